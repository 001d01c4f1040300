// What `concur bench soak` prints and writes: a one-line sample for the terminal, a summary with
// the goals, and an SVG of RSS, disk, log entries in memory, throughput and p99 over time.
// Formatting only: it measures nothing and never changes a result.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SoakResult, SoakSample } from './soak.ts';

export function formatSample(s: SoakSample): string {
  const logs = s.logEntries.map((n) => (n === null ? '-' : String(n))).join('/');
  return `t=${String(s.t.toFixed(0)).padStart(4)}s  rss ${s.rssMb.toFixed(0).padStart(5)} MB  disk ${s.diskMb.toFixed(1).padStart(7)} MB  log ${logs} entries  ${String(s.putsPerSec).padStart(6)} puts/s  p99 ${s.p99Ms.toFixed(1)} ms${s.errors > 0 ? `  errors ${s.errors}` : ''}`;
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

export function formatSummary(r: SoakResult): string {
  const { early, late } = r;
  const ok = (b: boolean) => (b ? 'met' : 'NOT met');
  const maxLog = Math.max(0, ...r.samples.flatMap((s) => s.logEntries.filter((n): n is number => n !== null)));
  return [
    `soak: ${r.totalPuts} puts, ${r.totalErrors} errors${r.totalErrors > 0 ? ` (${Object.entries(r.errorStatuses).map(([s, n]) => `${n}× ${s === '0' ? 'connection error' : `HTTP ${s}`}`).join(', ')})` : ''}`,
    `  ${early.fromSec}-${early.toSec} s: rss ${early.rssMb.toFixed(0)} MB, disk ${early.diskMb.toFixed(1)} MB, ${early.putsPerSec.toFixed(0)} puts/s`,
    `  ${late.fromSec}-${late.toSec} s: rss ${late.rssMb.toFixed(0)} MB, disk ${late.diskMb.toFixed(1)} MB, ${late.putsPerSec.toFixed(0)} puts/s`,
    `  most log entries any node held in memory: ${maxLog}`,
    `  every later window's mean RSS within ${pct(r.rssGrowth)} of the ${early.fromSec}-${early.toSec} s one (goal ≤ 25 %: ${ok(r.goals.rss)}), disk within ${pct(r.diskGrowth)} (goal ≤ 25 %: ${ok(r.goals.disk)});`,
    `  the last window's throughput ${pct(r.throughputRatio)} of the early one's (goal ≥ 80 %: ${ok(r.goals.throughput)})`,
  ].join('\n');
}

const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2'];

interface Series {
  label: string;
  values: (number | null)[];
}

/** One panel: a few series over the samples' time axis, y from 0. */
function panel(x: number, y: number, w: number, h: number, title: string, unit: string, t: number[], series: Series[]): string[] {
  const tMax = Math.max(1, ...t);
  const vMax = Math.max(1, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null))) * 1.1;
  const sx = (v: number) => x + (v / tMax) * w;
  const sy = (v: number) => y + h - (v / vMax) * h;
  const out: string[] = [];
  out.push(`<text x="${x}" y="${y - 8}" font-size="13">${title}</text>`);
  out.push(`<line x1="${x}" y1="${y + h}" x2="${x + w}" y2="${y + h}" stroke="#000"/>`);
  out.push(`<line x1="${x}" y1="${y}" x2="${x}" y2="${y + h}" stroke="#000"/>`);
  for (let i = 0; i <= 4; i++) {
    const v = (vMax / 4) * i;
    out.push(`<text x="${x - 6}" y="${sy(v) + 4}" text-anchor="end" font-size="10">${v >= 100 ? v.toFixed(0) : v.toFixed(1)}${i === 4 ? ` ${unit}` : ''}</text>`);
    if (i > 0) out.push(`<line x1="${x}" y1="${sy(v)}" x2="${x + w}" y2="${sy(v)}" stroke="#eeeeee"/>`);
  }
  for (let i = 0; i <= 5; i++) out.push(`<text x="${sx((tMax / 5) * i)}" y="${y + h + 14}" text-anchor="middle" font-size="10">${((tMax / 5) * i).toFixed(0)} s</text>`);
  series.forEach((s, k) => {
    const colour = colours[k % colours.length]!;
    const pts = s.values.map((v, i) => (v === null ? null : `${sx(t[i]!).toFixed(1)},${sy(v).toFixed(1)}`)).filter((p): p is string => p !== null);
    out.push(`<polyline class="series" fill="none" stroke="${colour}" stroke-width="1.5" points="${pts.join(' ')}"/>`);
    if (series.length > 1) out.push(`<text x="${x + w - 4}" y="${y + 12 + k * 13}" text-anchor="end" font-size="10" fill="${colour}">${s.label}</text>`);
  });
  return out;
}

export function soakSvg(r: SoakResult): string {
  const width = 720;
  const panelH = 110;
  const gap = 50;
  const left = 80;
  const panelW = width - left - 20;
  const t = r.samples.map((s) => s.t);
  const nodes = r.samples[0]?.logEntries.length ?? 0;
  const panels: [string, string, Series[]][] = [
    ['process RSS', 'MB', [{ label: 'rss', values: r.samples.map((s) => s.rssMb) }]],
    ['data directory', 'MB', [{ label: 'disk', values: r.samples.map((s) => s.diskMb) }]],
    ['log entries in memory', '', Array.from({ length: nodes }, (_, n) => ({ label: `node ${n + 1}`, values: r.samples.map((s) => s.logEntries[n] ?? null) }))],
    ['throughput', 'puts/s', [{ label: 'puts/s', values: r.samples.map((s) => s.putsPerSec) }]],
    ['p99 latency (per second)', 'ms', [{ label: 'p99', values: r.samples.map((s) => s.p99Ms) }]],
  ];
  const height = 50 + panels.length * (panelH + gap);
  const o = r.options;
  const title = `concur bench soak — ${o.nodes} nodes, ${o.storage}${o.storage === 'wal' ? ` (fsync ${o.fsync})` : ''}, ${o.clients} clients, ${o.valueBytes}-byte values over ${o.keys} keys, ${o.durationSec} s`;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${title}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="13">${title}</text>`,
  ];
  panels.forEach(([name, unit, series], i) => parts.push(...panel(left, 60 + i * (panelH + gap), panelW, panelH, name, unit, t, series)));
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** Writes soak.svg and soak.json under `dir`; returns their paths. */
export function writeSoakReport(r: SoakResult, dir: string): { svg: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const svg = join(dir, 'soak.svg');
  const json = join(dir, 'soak.json');
  writeFileSync(svg, soakSvg(r));
  writeFileSync(json, `${JSON.stringify(r, null, 2)}\n`);
  return { svg, json };
}
