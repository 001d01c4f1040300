// Bearer-token access to the API: the token is kept as a SHA-256 digest and each request's
// credential is compared digest to digest with timingSafeEqual (equal lengths, constant time).
// Must never keep, log or echo the token itself.
import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from './errors.ts';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

// Visible ASCII only: it travels in a header, and a space or control character would not survive.
const tokenPattern = /^[\x21-\x7e]+$/;

export class TokenGate {
  private readonly expected: Buffer;

  /** Throws (without the token in the message) when it could not be sent in a header. */
  constructor(token: string) {
    if (typeof token !== 'string' || !tokenPattern.test(token)) {
      throw new RangeError('the API token must be a non-empty string of visible ASCII characters (no spaces or line breaks): it is sent in an Authorization header');
    }
    this.expected = digest(token);
  }

  /** Whether an Authorization header value carries the token. */
  allows(header: string | string[] | undefined): boolean {
    if (typeof header !== 'string') return false;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    // Digests of equal length, so the comparison takes the same time whatever was sent.
    return timingSafeEqual(digest(m === null ? '' : m[1]!), this.expected) && m !== null;
  }

  /** The 401 for a request without the token (it names neither what was sent nor what is expected). */
  refusal(header: string | string[] | undefined): HttpError {
    const why = header === undefined ? 'this API needs a token and the request carries none' : 'the token in the Authorization header is not the one this API accepts';
    return new HttpError(401, 'unauthorized', `${why}: send "Authorization: Bearer <token>" (the concur CLI: --token-file FILE or CONCUR_TOKEN_FILE)`, { 'www-authenticate': 'Bearer' });
  }
}
