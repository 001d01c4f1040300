import { readFileSync, readdirSync } from 'node:fs';
const dir = process.argv[2]; const want = process.argv[3];
for (const f of readdirSync(dir).sort()) {
  const p = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map(); for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const dt = new Map();
  for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const agg = new Map();
  for (const [id, t] of dt) { const n = byId.get(id); if (!n.callFrame.url.includes(want)) continue; const par = parent.get(id); const k = `${n.callFrame.functionName}@${n.callFrame.lineNumber}:${n.callFrame.columnNumber} <- ${par?.callFrame.functionName}@${par?.callFrame.url.split('/').pop()}:${par?.callFrame.lineNumber}`; agg.set(k, (agg.get(k) ?? 0) + t); }
  const rows = [...agg].sort((a, b) => b[1] - a[1]).slice(0, 8);
  if (rows.length) { console.log('==', f.split('.')[4]); for (const [k, t] of rows) console.log(`  ${(t/1e3).toFixed(0).padStart(6)} ms ${k}`); }
}
