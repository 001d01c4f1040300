import autocannon from 'autocannon';
const url = process.argv[2]; const dur = Number(process.argv[3] ?? 10);
let i = 0;
const r = await autocannon({ url, connections: 64, duration: dur, requests: [{ method: 'PUT', setupRequest: (req) => ({ ...req, path: `/kv/k${(i++) % 1000}`, body: 'x'.repeat(64) }) }] });
console.log(JSON.stringify({ rps: r.requests.average, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors }));
