// Query parameters at the edge: each route names the ones it takes, and anything else — an
// unknown name, a name given twice — is refused with 400 `bad-parameter` saying which and what the
// route takes, rather than silently ignored. Must never echo more than a short piece of the input.
import { HttpError } from './errors.ts';

/** A name as it may appear in a message: quoted, and cut short if long. */
export function shown(text: string, max = 64): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

export function badParameter(message: string): HttpError {
  return new HttpError(400, 'bad-parameter', message);
}

/** Refuses parameters `where` (e.g. "GET /kv/:key") does not take, and any given more than once. */
export function checkParams(query: URLSearchParams, allowed: readonly string[], where: string): void {
  const seen = new Set<string>();
  for (const name of query.keys()) {
    if (!allowed.includes(name)) {
      const takes = allowed.length === 0 ? 'it takes no query parameters' : `it takes ${allowed.join(', ')}`;
      throw badParameter(`unknown query parameter ${shown(name)} on ${where}; ${takes}`);
    }
    if (seen.has(name)) throw badParameter(`query parameter ${shown(name)} is given more than once on ${where}; give it once`);
    seen.add(name);
  }
}
