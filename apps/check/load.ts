// Reads a recorded history file for `concur check`: concur's JSON lines or a Jepsen cas-register
// log, named by --format or detected from the first lines. Never checks anything; every problem
// with the file is a HistoryError naming the file (and the line, when there is one).
import { readFile } from 'node:fs/promises';
import { HistoryError, parseHistory, type HistoryOp } from '../chaos/history.ts';
import type { SpanFormat } from '../chaos/checker.ts';
import { msSpan } from '../chaos/checker.ts';
import { looksLikeJepsenOp, parseJepsenHistory } from './jepsen.ts';

export const historyFormats = ['concur', 'jepsen'] as const;
export type HistoryFormat = (typeof historyFormats)[number];

/** What `invoke`/`complete` count: ms of concur's recording clock, or a Jepsen log's line numbers. */
export type TimeUnit = 'ms' | 'line';

export interface RecordedHistory {
  file: string;
  format: HistoryFormat;
  /** True when the format was detected rather than given. */
  detected: boolean;
  timeUnit: TimeUnit;
  ops: HistoryOp[];
}

/** Lines looked at to detect a format (a Jepsen log may open with set-up lines of other loggers). */
const detectLinesMax = 200;

export const lineSpan: SpanFormat = (invoke, complete) => `[line ${invoke} → ${complete === null ? 'never completed' : complete}]`;

export function spanFor(unit: TimeUnit): SpanFormat {
  return unit === 'line' ? lineSpan : msSpan;
}

/** The format of a history's text, or a message saying why it cannot be told. */
export function detectFormat(text: string, source: string): HistoryFormat {
  const lines = text.split('\n');
  let firstLine = -1;
  for (let i = 0; i < lines.length && i < detectLinesMax; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (firstLine < 0) {
      firstLine = i;
      if (line.startsWith('{')) return 'concur';
    }
    if (looksLikeJepsenOp(line)) return 'jepsen';
  }
  if (firstLine < 0) throw new HistoryError(`${source} is empty: there are no operations to check`);
  const shown = lines[firstLine]!.trim();
  throw new HistoryError(
    `cannot tell the format of ${source}: line ${firstLine + 1} (${JSON.stringify(shown.length > 60 ? `${shown.slice(0, 57)}...` : shown)}) is neither a concur history line (a JSON object) nor a Jepsen op line (such as "0 :invoke :read nil"); pass --format concur or --format jepsen`,
  );
}

/** Parses a history's text in `format`, or in the detected one when `format` is not given. */
export function parseRecordedHistory(text: string, file: string, format?: HistoryFormat): RecordedHistory {
  const detected = format === undefined;
  const f = format ?? detectFormat(text, file);
  if (f === 'concur') refuseLockHistory(text, file);
  let ops: HistoryOp[];
  try {
    ops = f === 'concur' ? parseHistory(text, file) : parseJepsenHistory(text, file);
  } catch (e) {
    if (detected && e instanceof HistoryError) throw new HistoryError(`${e.message} (read as ${f}, the format detected; pass --format to choose)`);
    throw e;
  }
  if (ops.length === 0) throw new HistoryError(`${file} holds no operations to check (read as ${f})`);
  return { file, format: f, detected, timeUnit: f === 'jepsen' ? 'line' : 'ms', ops };
}

/** A `chaos --workload lock` history is JSON lines too, but of another model: say so, not "field owner". */
function refuseLockHistory(text: string, file: string): void {
  const first = text.split('\n').find((l) => l.trim() !== '');
  if (first === undefined) return;
  let rec: unknown;
  try {
    rec = JSON.parse(first);
  } catch {
    return;
  }
  if (typeof rec === 'object' && rec !== null && 'owner' in rec && 'lock' in rec) {
    throw new HistoryError(`${file} is a lock history (concur chaos --workload lock); concur check reads KV histories, and lock histories are checked for mutual exclusion by concur chaos --workload lock itself`);
  }
}

export async function loadRecordedHistory(file: string, format?: HistoryFormat): Promise<RecordedHistory> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file'
      : code === 'EISDIR' ? 'it is a directory; name the history files in it'
      : code === 'EACCES' ? 'permission denied'
      : (e as Error).message;
    throw new HistoryError(`cannot read ${file}: ${why}`);
  }
  return parseRecordedHistory(text, file, format);
}
