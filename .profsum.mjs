import { readFileSync, readdirSync } from 'node:fs';
const dir = process.argv[2]; const top = Number(process.argv[3] ?? 15);
for (const f of readdirSync(dir).sort()) {
  const p = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const dt = new Map(); // node id -> time
  for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const self = new Map(); let total = 0, idle = 0;
  for (const [id, t] of dt) { const n = byId.get(id); const cf = n.callFrame; const k = `${cf.functionName || '(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber}`; total += t; if (cf.functionName === '(idle)' || cf.functionName==='(program)') { if (cf.functionName==='(idle)') idle += t; } self.set(k, (self.get(k) ?? 0) + t); }
  console.log(`== ${f.split('.').slice(3,5).join('.')} total ${(total/1e6).toFixed(2)} s busy ${((total-idle)/1e6).toFixed(2)} s`);
  for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${(t/1e3).toFixed(0).padStart(7)} ms  ${k}`);
}
