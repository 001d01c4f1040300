// Input checks the demo apps' routes share: a JSON object body with known fields only, and whole
// numbers in the query string. Each failure is an AppHttpError(400) that names the field and
// what it must be, so a client sees what to fix.
import { AppHttpError } from '../../platform/app.ts';

/** The body as a JSON object with no field outside `known`. */
export function objectBody(body: unknown, known: readonly string[], shape: string): Record<string, unknown> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) throw new AppHttpError(400, `expected a JSON object ${shape}`);
  const extra = Object.keys(body).filter((k) => !known.includes(k));
  if (extra.length > 0) throw new AppHttpError(400, `unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => JSON.stringify(k)).join(', ')}; expected ${shape}`);
  return body as Record<string, unknown>;
}

/** A whole number from `min` to `max` in the query string (`fallback` when absent). */
export function queryInt(query: URLSearchParams, name: string, min: number, max: number, fallback: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d{1,15}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new AppHttpError(400, `?${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** A whole number from `min` to `max` in a body field (`fallback` when absent). */
export function bodyInt(body: Record<string, unknown>, name: string, min: number, max: number, fallback: number): number {
  const v = body[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new AppHttpError(400, `"${name}" must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return v;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
