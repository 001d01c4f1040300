// `concur bench soak`: the windows its goals compare, the report it draws, and a short real run
// whose samples show memory and disk following the live state while snapshots cut the logs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchSoak, goalWindows, windowOf, type SoakSample } from '../../bench/soak.ts';
import { formatSummary, soakSvg, writeSoakReport } from '../../bench/soak-report.ts';

const sample = (t: number, rssMb: number, diskMb: number, putsPerSec: number): SoakSample => ({ t, rssMb, diskMb, logEntries: [10, 12, 11], putsPerSec, p99Ms: 5, errors: 0 });

test('goal windows: minute 2 and the last minute; fifths of a run under 5 minutes', () => {
  assert.equal(goalWindows(600), { step: 60, early: [60, 120], late: [540, 600] });
  assert.equal(goalWindows(30), { step: 6, early: [6, 12], late: [24, 30] });
  const w = windowOf([sample(1, 100, 10, 5), sample(2, 200, 20, 7), sample(3, 400, 40, 9)], 1, 3);
  assert.equal(w, { fromSec: 1, toSec: 3, rssMb: 300, diskMb: 30, putsPerSec: 8 }, 'samples with from < t <= to');
});

test('a short soak with small snapshot intervals: every node answers each sample, logs stay bounded, the report draws five panels', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concur-soak-'));
  try {
    const r = await benchSoak({
      nodes: 3,
      durationSec: 10,
      storage: 'wal',
      fsync: 'batch',
      valueBytes: 256,
      keys: 50,
      clients: 8,
      loadThreads: 1,
      snapshot: { entries: 200, catchUpEntries: 50 },
      dataDir: null,
    });
    assert.ok(r.samples.length >= 8, `a sample a second (${r.samples.length})`);
    assert.ok(r.totalPuts > 500, `the load ran (${r.totalPuts} puts)`);
    assert.is(r.totalErrors, 0);
    const late = r.samples.filter((s) => s.t > 4);
    for (const s of late) {
      assert.is(s.logEntries.length, 3);
      for (const n of s.logEntries) assert.ok(n !== null && n < 2_000, `log in memory bounded by the snapshots (${JSON.stringify(s.logEntries)} at ${s.t} s)`);
      assert.ok(s.diskMb > 0 && s.rssMb > 0);
    }
    assert.ok(r.samples.some((s) => s.putsPerSec > 0 && s.p99Ms > 0), 'throughput and p99 per second');
    assert.match(formatSummary(r), /every later window's mean RSS within/);
    const files = writeSoakReport(r, dir);
    const svg = readFileSync(files.svg, 'utf8');
    for (const title of ['process RSS', 'data directory', 'log entries in memory', 'throughput', 'p99 latency']) assert.ok(svg.includes(title), title);
    assert.is((svg.match(/class="series"/g) ?? []).length, 4 + 3, 'one line each, and one per node for the log');
    assert.is(JSON.parse(readFileSync(files.json, 'utf8')).samples.length, r.samples.length);
    assert.ok(soakSvg(r).startsWith('<svg'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
