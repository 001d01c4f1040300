// Helpers for the Redis door's tests: a raw RESP client that sends exact bytes and reads answers
// one by one, and a check that Debian's redis tools are installed (they must be: CI installs them;
// a test that needs one fails, never skips, without it).
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import RedisParser from 'redis-parser';

export type Answer = string | number | null | Buffer | Error | Answer[];

/** A client that writes raw bytes and reads RESP answers, with a deadline on every wait. */
export class RawClient {
  private readonly answers: Answer[] = [];
  private waiter: (() => void) | null = null;
  readonly closed: Promise<void>;
  private isClosed = false;

  private constructor(readonly socket: Socket) {
    const parser = new RedisParser({
      returnBuffers: true,
      returnReply: (r: Answer) => this.push(r),
      returnError: (e: Error) => this.push(e),
      returnFatalError: (e: Error) => this.push(e),
    });
    socket.on('data', (d: Buffer) => parser.execute(d));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        this.waiter?.();
        resolve();
      }),
    );
  }

  static async open(port: number, host = '127.0.0.1'): Promise<RawClient> {
    const socket = connect(port, host);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  private push(a: Answer): void {
    this.answers.push(a);
    this.waiter?.();
  }

  send(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends one command as a RESP array of bulk strings. */
  command(...args: Array<string | Buffer>): void {
    this.send(encodeRequest(args));
  }

  /** The next answer (an Error for an error answer); rejects if none comes in time or the connection closes first. */
  async next(timeoutMs = 10_000): Promise<Answer> {
    const deadline = Date.now() + timeoutMs;
    while (this.answers.length === 0) {
      if (this.isClosed) throw new Error('the connection closed before an answer came');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
    return this.answers.shift()!;
  }

  async call(...args: Array<string | Buffer>): Promise<Answer> {
    this.command(...args);
    return this.next();
  }

  close(): void {
    this.socket.destroy();
  }
}

export function encodeRequest(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** The text of a simple or bulk answer, or the message of an error answer. */
export function text(a: Answer): string {
  if (a instanceof Error) return a.message;
  if (Buffer.isBuffer(a)) return a.toString('utf8');
  return String(a);
}

/** Fails (with what to install) unless Debian's `tool` runs: CI installs redis-tools and redis-server. */
export function requireTool(tool: 'redis-cli' | 'redis-benchmark' | 'redis-server'): void {
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    const message = `${tool} is not installed; install it with \`apt-get install -y redis-tools redis-server\` (as .ci/run does) and run the test again`;
    // uvu counts a failed before-hook against every test but prints nothing of it: say it here.
    process.stderr.write(`\n${message}\n`);
    throw new Error(message);
  }
}
