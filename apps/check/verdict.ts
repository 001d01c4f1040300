// Judges loaded histories with the linearizability checker of apps/chaos/checker.ts and says the
// verdict per file and key: as text for a person, as JSON for a program. Adds no checking of its
// own: every verdict here is the checker's.
import { checkHistory, formatFailure, keySettingsDefault, type CheckResult, type KeyVerdict, type LinearizationFailure } from '../chaos/checker.ts';
import type { RecordedHistory } from './load.ts';
import { spanFor } from './load.ts';

export type Verdict = boolean | 'unknown';

export interface FileCheck {
  history: RecordedHistory;
  /** The checker's result with failures in full (whole prefix, all pending ops), for drawing. */
  result: CheckResult;
}

export interface CheckSettings {
  /** Search steps allowed per key before its verdict becomes unknown. */
  searchStepsMax?: number;
}

export async function checkRecorded(history: RecordedHistory, settings: CheckSettings = {}): Promise<FileCheck> {
  // Keep the whole failure window: the page draws all of it; text and JSON trim it (trimFailure).
  const all = Math.max(1, history.ops.length);
  const result = await checkHistory(history.ops, {
    ...(settings.searchStepsMax !== undefined ? { searchStepsMax: settings.searchStepsMax } : {}),
    reportPrefixOpsMax: all,
    reportPendingOpsMax: all,
  });
  return { history, result };
}

/** The failure as the chaos summary shows it: the prefix's tail and the first pending ops. */
export function trimFailure(f: LinearizationFailure): LinearizationFailure {
  return {
    ...f,
    prefix: f.prefix.slice(Math.max(0, f.prefix.length - keySettingsDefault.reportPrefixOpsMax)),
    pending: f.pending.slice(0, keySettingsDefault.reportPendingOpsMax),
  };
}

/** Exit status for a set of verdicts, as `concur chaos` has it: any false → 1, else any unknown → 3, else 0. */
export function exitCodeFor(verdicts: readonly Verdict[]): 0 | 1 | 3 {
  if (verdicts.includes(false)) return 1;
  if (verdicts.includes('unknown')) return 3;
  return 0;
}

export function verdictWord(v: Verdict): string {
  return v === true ? 'linearizable' : v === false ? 'NOT linearizable' : 'undecided';
}

function keyJson(k: KeyVerdict): Record<string, unknown> {
  const out: Record<string, unknown> = {
    key: k.key,
    linearizable: k.linearizable,
    opsChecked: k.opsChecked,
    opsDropped: k.opsDropped,
    steps: k.steps,
    elapsedMs: Math.round(k.elapsedMs * 10) / 10,
  };
  if (k.reason !== undefined) out.reason = k.reason;
  if (k.failure) out.failure = trimFailure(k.failure);
  return out;
}

/** One file's machine-readable verdict; `invoke`/`complete` of the ops in it count `timeUnit`. */
export function fileJson(c: FileCheck): Record<string, unknown> {
  return {
    file: c.history.file,
    format: c.history.format,
    formatDetected: c.history.detected,
    timeUnit: c.history.timeUnit,
    ops: c.history.ops.length,
    linearizable: c.result.linearizable,
    elapsedMs: Math.round(c.result.elapsedMs * 10) / 10,
    keys: c.result.keys.map(keyJson),
  };
}

/** A person's summary of one file: a headline, one line per key that is not linearizable, the failure. */
export function fileText(c: FileCheck): string {
  const { history: h, result: r } = c;
  const keys = r.keys.length === 1 ? `key ${JSON.stringify(r.keys[0]!.key)}` : `${r.keys.length} keys`;
  const lines = [`${h.file} (${h.format}${h.detected ? ', detected' : ''}): ${h.ops.length} ops on ${keys}: ${verdictWord(r.linearizable)} (checked in ${r.elapsedMs.toFixed(0)} ms)`];
  const notOk = r.keys.filter((k) => k.linearizable !== true);
  if (r.keys.length > 1) {
    const lin = r.keys.length - notOk.length;
    if (notOk.length > 0) lines.push(`  ${lin} of ${r.keys.length} keys linearizable; ${notOk.map((k) => `${JSON.stringify(k.key)} ${verdictWord(k.linearizable)}`).join(', ')}`);
  }
  for (const k of r.keys) if (k.linearizable === 'unknown') lines.push(`  key ${JSON.stringify(k.key)}: ${k.reason ?? 'undecided'}; raise --steps-max to search further`);
  if (r.failure) lines.push('', formatFailure(trimFailure(r.failure), spanFor(h.timeUnit)));
  return lines.join('\n');
}
