// The outputs of `concur bench raft`: the terminal table, the Markdown report, and SVG charts
// drawn by hand (a throughput heatmap over batch × inflight, latency-vs-throughput curves).
// Pure functions of a RaftBenchReport plus one writer; it must never measure anything.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatRate, type RaftBenchReport, type RaftCell, type RaftCurve } from './raft.ts';
import type { StallSummary } from './stalls.ts';

/** What the machine itself takes from a thread that never sleeps, in one phrase. */
export function formatStalls(s: StallSummary): string {
  return `${s.threads} spinners (one per CPU, ${(s.durationMs / 1000).toFixed(1)} s, nothing else running) lost ${(s.lostFraction * 100).toFixed(1)}% of their time, ${s.gapsOver1MsPerSec} gaps ≥ 1 ms per second each, the longest ${s.maxGapMs} ms`;
}

const columns = ['nodes', 'batch', 'inflight', 'storage', 'ops/s', 'of limit', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'appends/s', 'entries/append', 'CPU µs/op', 'leader ELU'] as const;

function cellRow(c: RaftCell): string[] {
  return [
    String(c.nodes),
    String(c.batch),
    String(c.inflight),
    c.fsync ? `${c.storage} (${c.fsync}${c.snapshotEntries === null ? '' : c.snapshotEntries === 0 ? ', no snapshots' : `, snapshot/${c.snapshotEntries}`})` : c.storage,
    String(c.opsPerSec),
    `${(c.limitFraction * 100).toFixed(1)}%`,
    String(c.p50Ms),
    String(c.p90Ms),
    String(c.p99Ms),
    String(c.maxMs),
    String(c.appendsPerSec),
    String(c.entriesPerAppend),
    String(c.cpuUsPerOp),
    String(c.leaderElu),
  ];
}

/** The sweep as an aligned text table, for the terminal. */
export function formatTable(r: RaftBenchReport): string {
  const rows = [columns.slice() as string[], ...r.cells.map(cellRow)];
  const widths = columns.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((v, i) => (i < 4 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  '));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const stalls = r.stalls ? `machine stalls: ${formatStalls(r.stalls)}\n` : '';
  return `ring limit (64-byte frames between two workers): ${formatRate(r.limitMsgsPerSec)} msg/s\n${stalls}${lines.join('\n')}`;
}

/**
 * With snapshots on and off in one run (WAL): per cell, throughput with snapshots over without.
 * Empty unless both ran.
 */
export function snapshotRatios(r: RaftBenchReport): { cell: RaftCell; off: RaftCell; ratio: number }[] {
  const out: { cell: RaftCell; off: RaftCell; ratio: number }[] = [];
  for (const c of r.cells) {
    if (c.snapshotEntries === null || c.snapshotEntries === 0) continue;
    const off = r.cells.find((x) => x.snapshotEntries === 0 && x.nodes === c.nodes && x.batch === c.batch && x.inflight === c.inflight);
    if (off) out.push({ cell: c, off, ratio: Math.round((c.opsPerSec / Math.max(1, off.opsPerSec)) * 1000) / 1000 });
  }
  return out;
}

export function formatSnapshotRatios(r: RaftBenchReport): string[] {
  return snapshotRatios(r).map(
    ({ cell, off, ratio }) => `snapshots every ${cell.snapshotEntries} vs off, ${cell.nodes} nodes batch ${cell.batch} inflight ${cell.inflight}: ${cell.opsPerSec} vs ${off.opsPerSec} ops/s = ${(ratio * 100).toFixed(1)} %`,
  );
}

/** The ratios the issue's targets are stated in, from cells of this one run. */
export function targetRatios(r: RaftBenchReport): { best: RaftCell | null; bestVsUnbatched: number | null; pipelining: number | null } {
  const primary = r.options.storage === 'wal' ? (r.options.snapshotEntries[0] ?? null) : null;
  const mem = r.cells.filter((c) => c.nodes === (r.options.nodes[0] ?? 3) && c.snapshotEntries === primary);
  if (mem.length === 0) return { best: null, bestVsUnbatched: null, pipelining: null };
  const best = mem.reduce((a, b) => (b.opsPerSec > a.opsPerSec ? b : a));
  const at = (batch: number, inflight: number) => mem.find((c) => c.batch === batch && c.inflight === inflight);
  const unbatched = at(1, 1);
  const maxInflight = Math.max(...mem.filter((c) => c.batch === 1).map((c) => c.inflight));
  const piped = maxInflight > 1 ? at(1, maxInflight) : undefined;
  const ratio = (a: number, b: number) => Math.round((a / Math.max(1, b)) * 10) / 10;
  return {
    best,
    bestVsUnbatched: unbatched ? ratio(best.opsPerSec, unbatched.opsPerSec) : null,
    pipelining: unbatched && piped ? ratio(piped.opsPerSec, unbatched.opsPerSec) : null,
  };
}

export function markdownReport(r: RaftBenchReport, files: { heatmaps: string[]; curves: string | null }, command: string): string {
  const o = r.options;
  const t = targetRatios(r);
  const out: string[] = [];
  out.push(`# concur bench raft — ${r.startedAt}`, '');
  out.push(`Command: \`${command}\``, '');
  out.push(
    `${o.payloadBytes}-byte commands, ${o.clients} clients × ${o.window} outstanding on ${o.clientActors} client actor(s), ${o.durationMs / 1000} s per cell after ${o.warmupMs / 1000} s warm-up, storage ${o.storage}${o.storage === 'wal' ? ` (fsync ${o.fsync})` : ''}. Whole run: ${r.durationSec} s.`,
    '',
  );
  out.push(`Ring limit (64-byte opaque frames between two workers, same run): **${formatRate(r.limitMsgsPerSec)} msg/s**.`, '');
  if (r.stalls) {
    out.push(
      `Machine stalls, same run: ${formatStalls(r.stalls)}. A stall on a CPU delays whatever runs there, so no latency percentile that such stalls reach can be lower than they are.`,
      '',
    );
  }
  if (t.best) {
    out.push(`Best cell: batch ${t.best.batch}, inflight ${t.best.inflight}: **${formatRate(t.best.opsPerSec)} ops/s** (${(t.best.limitFraction * 100).toFixed(1)}% of the ring limit).`);
    if (t.bestVsUnbatched !== null) out.push(`Best vs batch 1 / inflight 1: **${t.bestVsUnbatched}×**.`);
    if (t.pipelining !== null) out.push(`Pipelining alone (batch 1, largest inflight vs inflight 1): **${t.pipelining}×**.`);
    out.push('');
  }
  const snaps = formatSnapshotRatios(r);
  if (snaps.length > 0) out.push(...snaps.map((l) => `- ${l}`), '');
  out.push(`| ${columns.join(' | ')} |`);
  out.push(`|${columns.map((_, i) => (i < 4 ? '---' : '---:')).join('|')}|`);
  for (const c of r.cells) out.push(`| ${cellRow(c).join(' | ')} |`);
  out.push('');
  out.push('Latency is from a proposal leaving its client actor to the ack saying it is applied on the leader. *appends/s* counts AppendEntries carrying at least one entry; *CPU µs/op* is the whole process (every thread) per committed op; *ELU* is event-loop utilisation.', '');
  for (const h of files.heatmaps) out.push(`![throughput heatmap](${h})`, '');
  if (r.curves.length > 0) {
    out.push('## Latency vs throughput (open loop)', '');
    out.push('Offered at a fixed rate whatever the answers; latency counts from when each proposal was due (no coordinated omission). *CPU cores*: CPU time of the whole process per second of the point.', '');
    for (const curve of r.curves) {
      out.push(`**${curve.label}**`, '');
      out.push('| offered/s | committed/s | CPU cores | p50 ms | p90 ms | p99 ms | max ms |', '|---:|---:|---:|---:|---:|---:|---:|');
      for (const p of curve.points) out.push(`| ${p.offeredPerSec} | ${p.opsPerSec} | ${p.cpuCores} | ${p.p50Ms} | ${p.p90Ms} | ${p.p99Ms} | ${p.maxMs} |`);
      out.push('');
    }
    if (files.curves) out.push(`![latency vs throughput](${files.curves})`, '');
  }
  return out.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Throughput over batch (rows) × inflight (columns) for one node count and storage. */
export function heatmapSvg(cells: RaftCell[], title: string): string {
  const batches = [...new Set(cells.map((c) => c.batch))].sort((a, b) => a - b);
  const inflights = [...new Set(cells.map((c) => c.inflight))].sort((a, b) => a - b);
  const cellW = 110;
  const cellH = 48;
  const left = 90;
  const top = 60;
  const width = left + inflights.length * cellW + 20;
  const height = top + batches.length * cellH + 50;
  const max = Math.max(1, ...cells.map((c) => c.opsPerSec));
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<title>${esc(title)}</title>`);
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`);
  parts.push(`<text x="${left + (inflights.length * cellW) / 2}" y="${top - 22}" text-anchor="middle">inflight (AppendEntries in flight per follower)</text>`);
  parts.push(`<text x="18" y="${top + (batches.length * cellH) / 2}" text-anchor="middle" transform="rotate(-90 18 ${top + (batches.length * cellH) / 2})">batch (entries per AppendEntries)</text>`);
  inflights.forEach((f, j) => parts.push(`<text x="${left + j * cellW + cellW / 2}" y="${top - 6}" text-anchor="middle">${f}</text>`));
  batches.forEach((b, i) => {
    parts.push(`<text x="${left - 8}" y="${top + i * cellH + cellH / 2 + 4}" text-anchor="end">${b}</text>`);
    inflights.forEach((f, j) => {
      const c = cells.find((x) => x.batch === b && x.inflight === f);
      const x = left + j * cellW;
      const y = top + i * cellH;
      if (!c) {
        parts.push(`<rect class="cell empty" x="${x}" y="${y}" width="${cellW - 2}" height="${cellH - 2}" fill="#eeeeee"/>`);
        return;
      }
      // White to dark blue on a log scale: the sweep spans orders of magnitude.
      const k = Math.log(1 + c.opsPerSec) / Math.log(1 + max);
      const shade = (v: number) => Math.round(255 - k * (255 - v));
      const fill = `rgb(${shade(8)},${shade(48)},${shade(107)})`;
      const ink = k > 0.6 ? '#ffffff' : '#000000';
      parts.push(`<rect class="cell" data-batch="${b}" data-inflight="${f}" data-ops="${c.opsPerSec}" x="${x}" y="${y}" width="${cellW - 2}" height="${cellH - 2}" fill="${fill}"/>`);
      parts.push(`<text x="${x + cellW / 2}" y="${y + cellH / 2 - 2}" text-anchor="middle" fill="${ink}">${formatRate(c.opsPerSec)}/s</text>`);
      parts.push(`<text x="${x + cellW / 2}" y="${y + cellH / 2 + 13}" text-anchor="middle" fill="${ink}" font-size="10">p99 ${c.p99Ms} ms</text>`);
    });
  });
  parts.push(`<text x="${left}" y="${height - 15}" font-size="11">committed ops/s (colour: log scale, darkest = ${formatRate(max)}/s)</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

const curveColours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

/** p50 and p99 latency (log scale) against committed ops/s, one series per curve. */
export function curvesSvg(curves: RaftCurve[]): string {
  const width = 640;
  const height = 400;
  const left = 70;
  const right = 20;
  const top = 40;
  const bottom = 60;
  const pts = curves.flatMap((c) => c.points);
  const xMax = Math.max(1, ...pts.map((p) => p.opsPerSec)) * 1.05;
  const yMin = Math.max(0.01, Math.min(...pts.map((p) => p.p50Ms), 1));
  const yMax = Math.max(1, ...pts.map((p) => p.p99Ms)) * 1.5;
  const sx = (v: number) => left + (v / xMax) * (width - left - right);
  const sy = (v: number) => top + (1 - (Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * (height - top - bottom);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push('<title>commit latency vs throughput (open loop)</title>');
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">commit latency vs throughput (open loop)</text>`);
  parts.push(`<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#000"/>`);
  parts.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#000"/>`);
  for (let i = 0; i <= 4; i++) {
    const v = (xMax / 4) * i;
    parts.push(`<text x="${sx(v)}" y="${height - bottom + 16}" text-anchor="middle">${formatRate(v)}</text>`);
  }
  for (let d = Math.ceil(Math.log10(yMin)); d <= Math.floor(Math.log10(yMax)); d++) {
    const v = 10 ** d;
    parts.push(`<line x1="${left}" y1="${sy(v)}" x2="${width - right}" y2="${sy(v)}" stroke="#dddddd"/>`);
    parts.push(`<text x="${left - 6}" y="${sy(v) + 4}" text-anchor="end">${v >= 1 ? v : v.toFixed(Math.max(0, -d))} ms</text>`);
  }
  parts.push(`<text x="${left + (width - left - right) / 2}" y="${height - 20}" text-anchor="middle">committed ops/s</text>`);
  curves.forEach((c, i) => {
    const colour = curveColours[i % curveColours.length]!;
    for (const [key, dash] of [['p50Ms', ''], ['p99Ms', ' stroke-dasharray="5,3"']] as const) {
      const path = c.points.map((p) => `${sx(p.opsPerSec).toFixed(1)},${sy(p[key]).toFixed(1)}`).join(' ');
      parts.push(`<polyline class="series" fill="none" stroke="${colour}" stroke-width="2"${dash} points="${path}"/>`);
      for (const p of c.points) parts.push(`<circle cx="${sx(p.opsPerSec).toFixed(1)}" cy="${sy(p[key]).toFixed(1)}" r="3" fill="${colour}"/>`);
    }
    parts.push(`<text x="${left + 10}" y="${top + 14 + i * 16}" fill="${colour}">${esc(c.label)} — solid p50, dashed p99</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export interface WrittenReport {
  dir: string;
  markdown: string;
  heatmaps: string[];
  curves: string | null;
  json: string;
}

/** Writes report.md, heatmap-<nodes>.svg per node count, latency.svg and results.json under `dir`. */
export function writeReport(r: RaftBenchReport, dir: string, command: string): WrittenReport {
  mkdirSync(dir, { recursive: true });
  const heatmaps: string[] = [];
  for (const nodes of [...new Set(r.cells.map((c) => c.nodes))]) {
    for (const snap of [...new Set(r.cells.map((c) => c.snapshotEntries))]) {
      const name = snap === null || r.options.snapshotEntries.length < 2 ? `heatmap-${nodes}.svg` : `heatmap-${nodes}-snap${snap}.svg`;
      const storage = r.options.storage === 'wal' ? `WAL, fsync ${r.options.fsync}, ${snap === 0 ? 'no snapshots' : `snapshot every ${snap}`}` : 'memory';
      writeFileSync(join(dir, name), heatmapSvg(r.cells.filter((c) => c.nodes === nodes && c.snapshotEntries === snap), `committed ops/s — ${nodes} nodes, ${storage}, ${r.options.payloadBytes}-byte commands`));
      heatmaps.push(name);
    }
  }
  let curves: string | null = null;
  if (r.curves.length > 0) {
    curves = 'latency.svg';
    writeFileSync(join(dir, curves), curvesSvg(r.curves));
  }
  writeFileSync(join(dir, 'report.md'), markdownReport(r, { heatmaps, curves }, command));
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify(r, null, 2)}\n`);
  return { dir, markdown: join(dir, 'report.md'), heatmaps: heatmaps.map((h) => join(dir, h)), curves: curves ? join(dir, curves) : null, json: join(dir, 'results.json') };
}
