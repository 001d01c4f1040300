// The machinery of `concur bench raft` on real workers: a tiny sweep yields exactly the cells
// asked for, the report files exist and parse, and client actors' proposals all commit, once.
// No performance figure is asserted here: the benchmark measures, the tests check the counting.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor } from '../../runtime/supervisor.ts';
import { clusterShapes } from '../../apps/cluster/protocol.ts';
import { timing } from '../../apps/cluster/cluster.ts';
import type { NodeConfig } from '../../apps/cluster/node-actor.ts';
import type { RaftClientConfig, RaftClientResult } from '../../bench/raft-client.ts';
import { raftBenchDefaults, runRaftBench, jsonSummary, type RaftBenchReport } from '../../bench/raft.ts';
import { writeReport } from '../../bench/raft-report.ts';
import { eventually } from '../support/cluster.ts';
import { wellFormedXml } from './xml.ts';

let report: RaftBenchReport;

test('a tiny sweep produces exactly the cells asked for, with sane counters', async () => {
  const steps: string[] = [];
  report = await runRaftBench(
    { ...raftBenchDefaults, nodes: [3], batch: [1, 16], inflight: [1, 4], durationMs: 400, warmupMs: 200, clients: 4, window: 8, curveFractions: [0.5, 1], curvePointMs: 300, curveWarmupMs: 100, limitFrames: 100_000, stallScanMs: 200 },
    { total: 10, onStep: (_d, label) => steps.push(label) },
  );
  const cells = report.cells.map((c) => `${c.nodes}/${c.batch}/${c.inflight}`);
  assert.equal(cells, ['3/1/1', '3/1/4', '3/16/1', '3/16/4']);
  assert.is(steps.length, 10, steps.join('\n'));
  assert.ok(report.limitMsgsPerSec > 0);
  assert.ok(report.stalls !== null && report.stalls.threads >= 1 && report.stalls.durationMs >= 200, JSON.stringify(report.stalls));
  for (const c of report.cells) {
    assert.ok(c.opsPerSec > 0, `cell ${c.batch}/${c.inflight} committed nothing`);
    assert.ok(c.p50Ms > 0 && c.p50Ms <= c.p99Ms && c.p99Ms <= c.maxMs, `percentiles out of order: ${JSON.stringify(c)}`);
    assert.ok(c.entriesPerAppend >= 1 && c.entriesPerAppend <= c.batch, `entries per append ${c.entriesPerAppend} outside 1..${c.batch}`);
    assert.is(c.storage, 'memory');
  }
  assert.ok(report.curves.length >= 1 && report.curves.length <= 2);
  for (const curve of report.curves) {
    assert.ok(curve.points.length >= 1);
    for (const p of curve.points) assert.ok(p.cpuCores > 0 && p.cpuCores <= 64, `CPU cores of a curve point: ${p.cpuCores}`);
  }
  const json = JSON.parse(JSON.stringify(jsonSummary(report))) as { limitMsgsPerSec: number; cells: Record<string, unknown>[] };
  assert.is(json.cells.length, 4);
  for (const key of ['nodes', 'batch', 'inflight', 'storage', 'opsPerSec', 'p50Ms', 'p99Ms', 'entriesPerAppend']) assert.ok(key in json.cells[0]!, `JSON cell lacks ${key}`);
});

test('the report files exist and parse: a Markdown table with a row per cell, well-formed SVG', () => {
  const dir = mkdtempSync(join(tmpdir(), 'concur-report-'));
  try {
    const w = writeReport(report, dir, 'concur bench raft (test)');
    for (const f of [w.markdown, w.json, ...w.heatmaps, w.curves!]) assert.ok(existsSync(f), `${f} missing`);
    const md = readFileSync(w.markdown, 'utf8');
    assert.match(md, /Machine stalls, same run: \d+ spinners/);
    // The cell table: from its header to the first line that is not a table row.
    const lines = md.split('\n');
    const headerAt = lines.findIndex((l) => l.startsWith('| nodes'));
    assert.ok(headerAt >= 0, md);
    const header = lines[headerAt]!;
    const end = lines.findIndex((l, i) => i > headerAt && !l.startsWith('|'));
    const rows = lines.slice(headerAt + 2, end);
    assert.is(rows.length, 4, md);
    for (const row of rows) assert.match(row, /^\| 3 \| \d+ \| \d+ \| memory \|/);
    for (const row of rows) assert.is(row.split('|').length, header.split('|').length, `row and header differ in columns: ${row}`);
    const heat = readFileSync(w.heatmaps[0]!, 'utf8');
    wellFormedXml(heat);
    assert.is(heat.match(/<rect class="cell"/g)?.length, 4);
    const curves = readFileSync(w.curves!, 'utf8');
    wellFormedXml(curves);
    assert.is(curves.match(/<polyline class="series"/g)?.length, 2 * report.curves.length);
    assert.is((JSON.parse(readFileSync(w.json, 'utf8')) as RaftBenchReport).cells.length, 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('client actors: every proposal sent commits exactly once on every node (count app)', async () => {
  const t = timing({ electionMsMin: 150, electionMsMax: 300, heartbeatMs: 50 });
  const voters = [1, 2, 3];
  const node: NodeConfig = { tickMs: t.tickMs, raft: { electionTicks: t.electionTicks, heartbeatTicks: t.heartbeatTicks, batchEntriesMax: 7, inflightMax: 3, uncommittedEntriesMax: 100 }, storage: 'memory', fsync: 'batch', statusEveryMs: 50, seed: 3, app: 'count', voters };
  const client: RaftClientConfig = { voters, payloadBytes: 64, proposalsPerFrameMax: 13, openLoopOutstandingMax: 40 };
  const s = await Supervisor.start({
    actors: [
      ...voters.map((id) => ({ id, module: new URL('../../apps/cluster/node-actor.ts', import.meta.url), config: node as unknown as Record<string, unknown> })),
      ...[4, 5].map((id) => ({ id, module: new URL('../../bench/raft-client.ts', import.meta.url), config: client as unknown as Record<string, unknown> })),
    ],
    shapes: clusterShapes,
    metricsIntervalMs: 0,
    restart: { auto: false },
  });
  try {
    type Stats = { role: number; appliedCommands: number };
    const leader = await eventually(async () => {
      const st = await Promise.all(voters.map((id) => s.call<Stats>(id, 'benchStats')));
      const i = st.findIndex((x) => x.role === 3);
      return i >= 0 ? voters[i] : undefined;
    }, 'a leader', 5_000);
    // Client 5 starts at a follower: it must be redirected. The uncommitted limit (100) is below
    // what the clients keep outstanding (2 × 150), so busy answers and go-back-N are exercised.
    const follower = voters.find((v) => v !== leader)!;
    const run = (id: number, at: number, totalOps: number) =>
      s.call<RaftClientResult>(id, 'run', [{ leader: at, mode: 'closed', outstanding: 150, ratePerSec: 0, warmupMs: 0, durationMs: 100, totalOps, drainTimeoutMs: 15_000 }], 30_000);
    const [a, b] = await Promise.all([run(4, leader, 5_000), run(5, follower, 3_333)]);
    assert.is(a.ackedTotal, 5_000);
    assert.is(b.ackedTotal, 3_333);
    assert.ok(b.redirects >= 1, 'the client sent to a follower was redirected');
    await eventually(async () => {
      const st = await Promise.all(voters.map((id) => s.call<Stats>(id, 'benchStats')));
      return st.every((x) => x.appliedCommands === 8_333) ? true : undefined;
    }, 'every node applied exactly 8333 commands', 10_000);
    // Open loop, offered far faster than 40 outstanding allow: the cap holds sending back (no busy
    // refusal: 40 < the leader's limit of 100), and every proposal still commits exactly once.
    const open = await s.call<RaftClientResult>(4, 'run', [{ leader, mode: 'open', outstanding: 0, ratePerSec: 200_000, warmupMs: 0, durationMs: 100, totalOps: 2_000, drainTimeoutMs: 15_000 }], 30_000);
    assert.is(open.ackedTotal - a.ackedTotal, 2_000);
    assert.is(open.busy, 0, 'the outstanding cap keeps the client under the leader limit');
    await eventually(async () => {
      const st = await Promise.all(voters.map((id) => s.call<Stats>(id, 'benchStats')));
      return st.every((x) => x.appliedCommands === 10_333) ? true : undefined;
    }, 'every node applied exactly 10333 commands', 10_000);
  } finally {
    await s.stop();
  }
});

test.run();
