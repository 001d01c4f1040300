// Request framing checked ahead of the parser: a client's bytes are scanned for RESP request
// boundaries (arrays of bulk strings) so limits hold before anything is buffered. redis-parser
// then sees only what passed: whole requests within requestBytesMax, or a request's head it will
// be reset from. Must never buffer: it keeps counters, not bytes.

export interface FramingEvents {
  /** chunk[start, end) holds requests (the last possibly partial) for the parser. */
  feed(chunk: Buffer, start: number, end: number): void;
  /**
   * The request now being read declares `bytes`, over the limit: the rest of it is skipped, not
   * buffered. The parser must be reset (it may hold the request's head); answer an error here.
   */
  drop(bytes: number): void;
  /** A protocol error: answer `message` and close; nothing after it is read. */
  fatal(message: string): void;
}

const enum St {
  Start,
  Count,
  CountLf,
  BulkType,
  BulkLen,
  BulkLenLf,
  Body,
  BodyCr,
  BodyLf,
  Closed,
}

const CR = 13;
const LF = 10;
// Digits in a count or a length: 2^53 has 16; more is garbage, not a number.
const digitsMax = 15;

function shown(byte: number): string {
  return JSON.stringify(String.fromCharCode(byte));
}

export class RequestFramer {
  private st = St.Start;
  private number = 0;
  private digits = 0;
  private negative = false;
  private argsLeft = 0;
  private bodyLeft = 0;
  /** Bytes the current request has declared so far (framing included). */
  private requestBytes = 0;
  private dropping = false;

  constructor(
    private readonly requestBytesMax: number,
    private readonly requestArgsMax: number,
    private readonly events: FramingEvents,
  ) {}

  /** Between requests: nothing of a request is held, here or in the parser. */
  get atRequestStart(): boolean {
    return this.st === St.Start && !this.dropping;
  }

    get closed(): boolean {
    return this.st === St.Closed;
  }

  scan(chunk: Buffer): void {
    const n = chunk.length;
    // Where the bytes for the parser start in this chunk (-1 while dropping), and where the
    // request being read started (-1: in an earlier chunk).
    let feedFrom = this.dropping ? -1 : 0;
    let requestAt = this.st === St.Start ? 0 : -1;
    let i = 0;
    while (i < n) {
      switch (this.st) {
        case St.Start: {
          const b = chunk[i]!;
          if (b === CR || b === LF) {
            // An empty line between requests is skipped, as Redis skips an empty inline command
            // (redis-cli --pipe sends one before its closing ECHO). Not for the parser's eyes.
            if (feedFrom !== -1 && i > feedFrom) this.events.feed(chunk, feedFrom, i);
            i++;
            feedFrom = i;
            requestAt = i;
            break;
          }
          if (b !== 42 /* '*' */) return this.fail(chunk, feedFrom, i, `Protocol error: expected '*', got ${shown(b)} (send each command as an array of bulk strings; inline commands are not supported)`);
          requestAt = i;
          if (feedFrom === -1) feedFrom = i;
          this.st = St.Count;
          this.number = 0;
          this.digits = 0;
          this.negative = false;
          this.requestBytes = 1;
          i++;
          break;
        }
        case St.Count:
        case St.BulkLen: {
          const b = chunk[i]!;
          i++;
          this.requestBytes++;
          if (b >= 48 && b <= 57 && this.digits < digitsMax) {
            this.number = this.number * 10 + (b - 48);
            this.digits++;
          } else if (b === 45 /* '-' */ && this.digits === 0 && !this.negative && this.st === St.Count) {
            this.negative = true;
          } else if (b === CR && this.digits > 0) {
            this.st = this.st === St.Count ? St.CountLf : St.BulkLenLf;
          } else {
            return this.fail(chunk, feedFrom, requestAt, `Protocol error: invalid ${this.st === St.Count ? 'multibulk' : 'bulk'} length`);
          }
          break;
        }
        case St.CountLf: {
          if (chunk[i] !== LF) return this.fail(chunk, feedFrom, requestAt, 'Protocol error: invalid multibulk length');
          i++;
          this.requestBytes++;
          if (this.negative || this.number === 0) {
            // *0 and *-1 are empty requests, skipped as Redis skips them.
            this.st = St.Start;
            requestAt = i;
            break;
          }
          if (this.number > this.requestArgsMax) return this.fail(chunk, feedFrom, requestAt, `Protocol error: invalid multibulk length (${this.number} arguments; at most ${this.requestArgsMax})`);
          this.argsLeft = this.number;
          this.st = St.BulkType;
          break;
        }
        case St.BulkType: {
          const b = chunk[i]!;
          if (b !== 36 /* '$' */) return this.fail(chunk, feedFrom, requestAt, `Protocol error: expected '$', got ${shown(b)}`);
          i++;
          this.requestBytes++;
          this.number = 0;
          this.digits = 0;
          this.st = St.BulkLen;
          break;
        }
        case St.BulkLenLf: {
          if (chunk[i] !== LF) return this.fail(chunk, feedFrom, requestAt, 'Protocol error: invalid bulk length');
          i++;
          this.requestBytes += 1 + this.number + 2;
          this.bodyLeft = this.number;
          this.st = this.bodyLeft === 0 ? St.BodyCr : St.Body;
          if (!this.dropping && this.requestBytes > this.requestBytesMax) {
            // Complete requests before this one go to the parser first, so answers stay in order.
            if (feedFrom !== -1 && requestAt !== -1 && requestAt > feedFrom) this.events.feed(chunk, feedFrom, requestAt);
            feedFrom = -1;
            this.dropping = true;
            this.events.drop(this.requestBytes);
          }
          break;
        }
        case St.Body: {
          const take = Math.min(this.bodyLeft, n - i);
          i += take;
          this.bodyLeft -= take;
          if (this.bodyLeft === 0) this.st = St.BodyCr;
          break;
        }
        case St.BodyCr:
        case St.BodyLf: {
          const want = this.st === St.BodyCr ? CR : LF;
          if (chunk[i] !== want) return this.fail(chunk, feedFrom, requestAt, 'Protocol error: a bulk string is not followed by CRLF (its length is wrong)');
          i++;
          if (this.st === St.BodyCr) {
            this.st = St.BodyLf;
            break;
          }
          this.argsLeft--;
          if (this.argsLeft > 0) {
            this.st = St.BulkType;
            break;
          }
          this.st = St.Start;
          requestAt = i;
          if (this.dropping) {
            this.dropping = false;
            feedFrom = i;
          }
          break;
        }
        case St.Closed:
          return;
      }
    }
    if (feedFrom !== -1 && n > feedFrom) this.events.feed(chunk, feedFrom, n);
  }

  private fail(chunk: Buffer, feedFrom: number, requestAt: number, message: string): void {
    // Whole requests before the bad one are still answered, then the error, then the close.
    if (feedFrom !== -1 && requestAt !== -1 && requestAt > feedFrom) this.events.feed(chunk, feedFrom, requestAt);
    this.st = St.Closed;
    this.events.fatal(message);
  }
}
