// The page `concur check --html OUT` writes: each key's history as bars on a time axis (one row
// per client, a bar from invocation to completion), and for a key that is not linearizable the
// longest linearizable prefix, numbered in linearization order, and the op that cannot be placed
// (Porcupine's visualisation, drawn server-side as SVG). Self-contained: inline CSS, SVG and JS,
// nothing fetched from anywhere, so it opens offline and can be attached to a bug report.
import { formatFailure, formatOp, type IndexedOp, type KeyVerdict } from '../chaos/checker.ts';
import type { HistoryOp } from '../chaos/history.ts';
import { spanFor, type TimeUnit } from './load.ts';
import type { FileCheck } from './verdict.ts';
import { trimFailure, verdictWord } from './verdict.ts';

/** Keys drawn per file besides the ones that are not linearizable; past it they are only counted. */
export const htmlKeysDrawnMax = 50;
/** Pixels per op of a key (the axis stretches with the history), and the bounds of that width. */
const pxPerOp = 28;
const plotWidthMin = 900;
const plotWidthMax = 30_000;
const rowPx = 24;
const labelPx = 110;
const axisPx = 28;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&${({ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": '#39' } as Record<string, string>)[c]};`);
}

function shortValue(v: string | null): string {
  if (v === null) return 'nil';
  return v.length > 12 ? `${v.slice(0, 11)}…` : v;
}

/** The bar's label: what the op did, as short as it can be said. */
function opLabel(o: HistoryOp): string {
  const r = o.status === 'ok' ? o.result : null;
  switch (o.op) {
    case 'put':
      return `put ${shortValue(o.value)}`;
    case 'delete':
      return 'delete';
    case 'get':
      return o.status === 'ok' ? `get → ${shortValue(r as string | null)}` : 'get';
    case 'cas':
      return `cas ${shortValue(o.expect ?? null)}→${shortValue(o.value)}${o.status === 'ok' ? (r ? ' ✓' : ' ✗') : ''}`;
  }
}

function compareClients(a: string | number, b: string | number): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

/** Ticks at 1, 2 or 5 × 10^k so the axis reads in round numbers. */
function ticks(from: number, to: number, countWanted: number): number[] {
  const span = Math.max(to - from, 1e-9);
  const raw = span / countWanted;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let t = Math.ceil(from / step) * step; t <= to + 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

interface Marks {
  /** Op id → 1-based position in the longest linearizable prefix, with the value after it. */
  order: Map<number, { n: number; after: string | null }>;
  stuck: number | null;
  pending: Set<number>;
}

function marksOf(k: KeyVerdict): Marks {
  const m: Marks = { order: new Map(), stuck: null, pending: new Set() };
  const f = k.failure;
  if (!f) return m;
  const first = f.prefixOpsTotal - f.prefix.length + 1;
  f.prefix.forEach((p, i) => m.order.set(p.op.id, { n: first + i, after: p.stateAfter }));
  m.stuck = f.stuck.id;
  for (const o of f.pending) m.pending.add(o.id);
  return m;
}

function keySvg(ops: readonly IndexedOp[], k: KeyVerdict, unit: TimeUnit): string {
  const span = spanFor(unit);
  const marks = marksOf(k);
  const clients = [...new Set(ops.map((o) => o.client))].sort(compareClients);
  const row = new Map(clients.map((c, i) => [c, i]));
  const t0 = Math.min(...ops.map((o) => o.invoke));
  const tLast = Math.max(...ops.map((o) => o.complete ?? o.invoke));
  // Ops that never completed run past the last event, to an "end of history" mark.
  const hasOpen = ops.some((o) => o.complete === null);
  const width = Math.min(plotWidthMax, Math.max(plotWidthMin, ops.length * pxPerOp));
  const tEnd = tLast + (hasOpen || tLast === t0 ? Math.max((tLast - t0) * 0.04, 1) : 0);
  const x = (t: number) => 8 + ((t - t0) / (tEnd - t0)) * width;
  const height = axisPx + clients.length * rowPx + 8;
  const parts: string[] = [];
  // Client names sit in their own SVG beside the scrolling plot, so they stay in view.
  const labels = clients.map((c, i) => `<text class="client" x="${labelPx - 8}" y="${axisPx + i * rowPx + rowPx / 2 + 4}">${esc(`client ${c}`)}</text>`);
  const labelSvg = `<svg class="labels" width="${labelPx}" height="${height}">${labels.join('')}</svg>`;
  parts.push(`<svg class="plot" width="${width + 28}" height="${height}" role="img">`);
  for (const t of ticks(t0, tEnd, Math.max(4, Math.round(width / 120)))) {
    const tx = x(t).toFixed(1);
    parts.push(`<line class="tick" x1="${tx}" y1="${axisPx - 6}" x2="${tx}" y2="${height}"/><text class="ticklabel" x="${tx}" y="${axisPx - 10}">${esc(unit === 'line' ? `line ${t}` : `${t} ms`)}</text>`);
  }
  if (hasOpen) parts.push(`<text class="ticklabel end" x="${x(tEnd).toFixed(1)}" y="${axisPx - 10}">end</text>`);
  for (const o of ops) {
    const y = axisPx + row.get(o.client)! * rowPx + 3;
    const x1 = x(o.invoke);
    const x2 = Math.max(x1 + 3, x(o.complete ?? tEnd));
    const ord = marks.order.get(o.id);
    const classes = ['op', o.status];
    if (ord) classes.push('prefix');
    if (marks.stuck === o.id) classes.push('stuck');
    if (marks.pending.has(o.id)) classes.push('pending');
    let title = formatOp(o, span).replace(/\s+/g, ' ');
    if (o.status === 'fail') title += ' (certainly did not take effect: not checked)';
    if (o.status === 'unknown') title += ' (outcome unknown: may take effect at any time after its invocation)';
    if (ord) title += `\nlinearized ${ord.n}th; value after it: ${ord.after === null ? 'absent' : JSON.stringify(ord.after)}`;
    if (marks.stuck === o.id) title += '\ncannot be placed: it completed next but no order of the pending ops lets it take effect';
    const w = x2 - x1;
    const label = opLabel(o);
    parts.push(`<g class="${classes.join(' ')}" data-op="${o.id}"><title>${esc(title)}</title>`);
    parts.push(`<rect x="${x1.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowPx - 6}" rx="3"/>`);
    // Text only where it fits: about 6 px per character at this size; the title has the rest.
    const text = ord ? `${ord.n}: ${label}` : label;
    if (w > text.length * 6 + 6) parts.push(`<text x="${(x1 + 4).toFixed(1)}" y="${y + rowPx / 2 + 1}">${esc(text)}</text>`);
    else if (ord && w > String(ord.n).length * 6 + 4) parts.push(`<text x="${(x1 + 2).toFixed(1)}" y="${y + rowPx / 2 + 1}">${ord.n}</text>`);
    parts.push('</g>');
  }
  parts.push('</svg>');
  return `<div class="plotrow">${labelSvg}<div class="scroll">${parts.join('')}</div></div>`;
}

const css = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; } h3 { font-size: 1em; }
.verdict-true { color: #1a7f37; } .verdict-false { color: #c62828; } .verdict-unknown { color: #b26a00; }
.plotrow { display: flex; border: 1px solid #ddd; background: #fcfcfc; }
.labels { flex: none; }
.scroll { overflow-x: auto; flex: 1; }
.labels text { font: 11px ui-monospace, monospace; text-anchor: end; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 12px; }
.legend span { display: inline-block; margin-right: 1.2em; }
.sw { display: inline-block; width: 1.6em; height: .9em; vertical-align: middle; margin-right: .3em; border-radius: 2px; }
.plot text { font: 10px ui-monospace, monospace; dominant-baseline: middle; pointer-events: none; }
.plot .tick { stroke: #e4e4e4; }
.plot .ticklabel { fill: #777; text-anchor: middle; }
.op rect { fill: #8fb8e8; stroke: #4a7fbf; stroke-width: 1; }
.op.unknown rect { fill: #e8e2f4; stroke: #8e7cc3; stroke-dasharray: 4 3; }
.op.fail rect { fill: #eee; stroke: #bbb; }
.op.fail text { fill: #999; }
.op.prefix rect { fill: #9fd8a8; stroke: #2e7d32; }
.op.pending rect { fill: #ffd79a; stroke: #e08a00; }
.op.stuck rect { fill: #f4a3a3; stroke: #c62828; stroke-width: 3; }
.op.selected rect { stroke: #000; stroke-width: 3; }
#detail { position: sticky; bottom: 0; background: #fff; border-top: 1px solid #ccc; padding: .4em; font: 12px ui-monospace, monospace; white-space: pre-wrap; min-height: 1.5em; }
`;

// Click an op to read it in full below; on load each failing key scrolls to its stuck op.
const script = `
document.addEventListener('click', function (e) {
  var g = e.target.closest ? e.target.closest('g.op') : null;
  document.querySelectorAll('g.op.selected').forEach(function (s) { s.classList.remove('selected'); });
  if (!g) return;
  g.classList.add('selected');
  document.getElementById('detail').textContent = g.querySelector('title').textContent;
});
window.addEventListener('load', function () {
  document.querySelectorAll('.scroll').forEach(function (box) {
    var stuck = box.querySelector('g.op.stuck rect');
    if (!stuck) return;
    box.scrollLeft = Math.max(0, Number(stuck.getAttribute('x')) - box.clientWidth / 2);
  });
});
`;

const legend = `<p class="legend">
<span><i class="sw" style="background:#8fb8e8"></i>ok</span>
<span><i class="sw" style="background:#e8e2f4;outline:1px dashed #8e7cc3"></i>outcome unknown (open-ended)</span>
<span><i class="sw" style="background:#eee"></i>failed (did not take effect)</span>
<span><i class="sw" style="background:#9fd8a8"></i>longest linearizable prefix, numbered in linearization order</span>
<span><i class="sw" style="background:#f4a3a3;outline:2px solid #c62828"></i>cannot be placed</span>
<span><i class="sw" style="background:#ffd79a"></i>pending when it had to take effect</span>
</p>`;

function verdictSpan(v: boolean | 'unknown'): string {
  return `<span class="verdict-${v}">${esc(verdictWord(v))}</span>`;
}

function fileSection(c: FileCheck): string {
  const { history: h, result: r } = c;
  const byKey = new Map<string, IndexedOp[]>();
  h.ops.forEach((o, id) => {
    let list = byKey.get(o.key);
    if (!list) byKey.set(o.key, (list = []));
    list.push({ ...o, id });
  });
  const out: string[] = [];
  out.push(`<h2>${esc(h.file)}: ${verdictSpan(r.linearizable)}</h2>`);
  out.push(`<p>${h.format} history${h.detected ? ' (format detected)' : ''}, ${h.ops.length} ops on ${r.keys.length} key${r.keys.length === 1 ? '' : 's'}, checked in ${r.elapsedMs.toFixed(0)} ms. Times are ${h.timeUnit === 'line' ? 'line numbers of the log (it has no clock)' : 'ms of the recording clock'}.</p>`);
  // Keys in trouble first: they are why the page is read.
  const rank = (k: KeyVerdict) => (k.linearizable === false ? 0 : k.linearizable === 'unknown' ? 1 : 2);
  const keys = [...r.keys].sort((a, b) => rank(a) - rank(b));
  let drawnFine = 0;
  let skipped = 0;
  for (const k of keys) {
    if (k.linearizable === true && drawnFine >= htmlKeysDrawnMax) {
      skipped++;
      continue;
    }
    if (k.linearizable === true) drawnFine++;
    out.push(`<h3>key ${esc(JSON.stringify(k.key))}: ${verdictSpan(k.linearizable)}</h3>`);
    out.push(`<p>${k.opsChecked} ops placed by the search, ${k.opsDropped} dropped (failed ops and reads of unknown outcome constrain nothing), ${k.steps} search steps.${k.reason ? ` ${esc(k.reason)}.` : ''}</p>`);
    if (k.failure) out.push(`<pre class="failure">${esc(formatFailure(trimFailure(k.failure), spanFor(h.timeUnit)))}</pre>`);
    out.push(keySvg(byKey.get(k.key) ?? [], k, h.timeUnit));
  }
  if (skipped > 0) out.push(`<p>${skipped} more key${skipped === 1 ? '' : 's'}, all linearizable, not drawn (the page draws ${htmlKeysDrawnMax} linearizable keys per file).</p>`);
  return out.join('\n');
}

/** The whole page for the checked files. */
export function renderCheckPage(checks: readonly FileCheck[]): string {
  const title = checks.length === 1 ? `concur check: ${checks[0]!.history.file}` : `concur check: ${checks.length} histories`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>${css}</style></head>
<body>
<h1>${esc(title)}</h1>
${legend}
<p>Hover over an op (or click it) for its details.</p>
${checks.map(fileSection).join('\n')}
<div id="detail"></div>
<script>${script}</script>
</body></html>
`;
}
