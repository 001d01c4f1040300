// Several apps on one replicated log: the state machine a node drives. It reads each entry's
// envelope (envelope.ts), advances the log's time on clock entries, answers a retried app
// command from its session table (so every app gets exactly-once for free), and hands the rest
// to the app named. Its snapshot holds the time, the session table and every app's image. Like
// every state machine it must be deterministic: replicas that apply the same log end equal.
import { createHash } from 'node:crypto';
import { appliedOutOfOrder, type SnapshotImage, type SnapshotRestore, type StateMachine } from '../state-machine.ts';
import type { App, AppContext, AppStateMachine } from './app.ts';
import { cborDecode, cborEncode, encodeRouterError, readEnvelope } from './envelope.ts';

/** Clients remembered per router (least recently used evicted first, in log order). */
const sessionsMax = 10_000;
/** Frame types of the router's snapshot image. */
const frameHeader = 1;
const framePiece = 2;
const frameEnd = 3;
const magic = 'concur-apps';
const imageVersion = 1;
const noResult = new Uint8Array(0);

interface Session {
  seq: number;
  result: Uint8Array;
}

export class AppRouter implements StateMachine {
  readonly names: readonly string[];
  private readonly machines: AppStateMachine[];
  private readonly byName = new Map<string, AppStateMachine>();
  private readonly kv: AppStateMachine | null;
  private timeMs = 0;
  private appliedIndex = 0;
  private sessions = new Map<string, Session>();
  private readonly ctx = { index: 0, timeMs: 0 };

  constructor(apps: readonly App[]) {
    if (apps.length === 0) throw new RangeError('a node needs at least one app');
    const names = apps.map((a) => a.name);
    if (new Set(names).size !== names.length) throw new RangeError(`apps named twice: ${names.join(', ')}`);
    this.names = names;
    this.machines = apps.map((a) => a.createStateMachine());
    apps.forEach((a, i) => this.byName.set(a.name, this.machines[i]!));
    this.kv = this.byName.get('kv') ?? null;
  }

  /** The log's time at the last entry applied. */
  get logTimeMs(): number {
    return this.timeMs;
  }

  app(name: string): AppStateMachine | undefined {
    return this.byName.get(name);
  }

  apply(index: number, bytes: Uint8Array, start: number, end: number): Uint8Array {
    if (!Number.isSafeInteger(index) || index <= this.appliedIndex) throw appliedOutOfOrder('AppRouter.apply', index, this.appliedIndex);
    this.appliedIndex = index;
    const ctx = this.ctx;
    ctx.index = index;
    ctx.timeMs = this.timeMs;
    const env = readEnvelope(bytes, start, end);
    switch (env.kind) {
      case 'kv':
        if (this.kv === null) return encodeRouterError({ error: 'unknown-app', message: 'a KV command, but the kv app does not run on this cluster (start it with --apps kv,...)' });
        return this.kv.applyAt !== undefined ? this.kv.applyAt(bytes, start, end, ctx) : this.kv.apply(bytes.subarray(start, end), ctx);
      case 'clock':
        this.timeMs += env.elapsedMs;
        ctx.timeMs = this.timeMs;
        for (const m of this.machines) m.onTime?.(ctx);
        return noResult;
      case 'malformed':
        return encodeRouterError({ error: 'malformed', message: env.why });
      case 'app': {
        const m = this.byName.get(env.app);
        if (m === undefined) return encodeRouterError({ error: 'unknown-app', message: `no app named ${JSON.stringify(env.app)} runs on this cluster (it runs ${this.names.join(', ')})` });
        if (env.seq === 0 || env.clientId === '') return m.apply(env.payload, ctx);
        const key = `${env.app}\u0000${env.clientId}`;
        const s = this.sessions.get(key);
        if (s !== undefined) {
          if (env.seq === s.seq) return s.result;
          if (env.seq < s.seq) return encodeRouterError({ error: 'stale-request', message: `client ${env.clientId} already sent seq ${s.seq}; seq ${env.seq} is an old retry` });
          this.sessions.delete(key);
        }
        const result = m.apply(env.payload, ctx);
        this.sessions.set(key, { seq: env.seq, result });
        if (this.sessions.size > sessionsMax) this.sessions.delete(this.sessions.keys().next().value!);
        return result;
      }
    }
  }

  /** KV reads (the read paths of the KV API). */
  readLocal(key: string): Uint8Array | undefined {
    const kv = this.kv;
    if (kv === null) return undefined;
    return kv.readKey !== undefined ? kv.readKey(key) : kv.query(key);
  }

  /** A query to one app; undefined for no answer (or no such app). */
  query(app: string, q: string): Uint8Array | undefined {
    return this.byName.get(app)?.query(q);
  }

  /** Whether some app needs the log's time to move (the leader then proposes clock entries). */
  wantsTime(): boolean {
    for (const m of this.machines) if (m.wantsTime?.() === true) return true;
    return false;
  }

  snapshot(): SnapshotImage {
    const header = cborEncode([magic, imageVersion, this.appliedIndex, this.timeMs, this.names, [...this.sessions].map(([k, s]) => [k, s.seq, s.result])]);
    const images = this.machines.map((m) => m.snapshot());
    const index = this.appliedIndex;
    let stage = 0; // 0: header; 1..n: app stage-1; n+1: end; then done
    return {
      index,
      next: () => {
        if (stage === 0) {
          stage = 1;
          return frame(frameHeader, header);
        }
        while (stage <= images.length) {
          const piece = images[stage - 1]!.next();
          if (piece !== null) {
            const body = new Uint8Array(1 + piece.length);
            body[0] = stage - 1;
            body.set(piece, 1);
            return frame(framePiece, body);
          }
          stage++;
        }
        if (stage === images.length + 1) {
          stage++;
          return frame(frameEnd, noResult);
        }
        return null;
      },
    };
  }

  restore(): SnapshotRestore {
    let buf = new Uint8Array(0);
    let header: { index: number; timeMs: number; sessions: Map<string, Session> } | null = null;
    let restores: (SnapshotRestore | null)[] = [];
    let ended = false;
    let legacy: SnapshotRestore | null = null;
    let decided = false;
    const fail = (why: string): never => {
      throw new Error(`app snapshot image: ${why}`);
    };
    const take = (): void => {
      for (;;) {
        if (buf.length < 5) return;
        const len = new DataView(buf.buffer, buf.byteOffset, buf.length).getUint32(0, true);
        if (buf.length < 5 + len) return;
        const type = buf[4]!;
        const body = buf.subarray(5, 5 + len);
        if (ended) fail('bytes after the end frame');
        if (type === frameHeader) {
          if (header !== null) fail('two header frames');
          const h = cborDecode(body) as unknown[];
          if (!Array.isArray(h) || h[0] !== magic || h[1] !== imageVersion) fail('not a concur apps image (or a newer version)');
          const names = h[4] as string[];
          if (names.join(',') !== this.names.join(',')) fail(`it holds apps ${names.join(', ')}, this node runs ${this.names.join(', ')}; start the cluster with --apps ${names.join(',')}`);
          header = { index: h[2] as number, timeMs: h[3] as number, sessions: new Map((h[5] as [string, number, Uint8Array][]).map(([k, seq, result]) => [k, { seq, result: new Uint8Array(result) }])) };
          restores = this.machines.map(() => null);
        } else if (type === framePiece) {
          if (header === null) fail('a piece before the header');
          const i = body[0]!;
          if (i >= this.machines.length) fail(`a piece of app ${i}, but there are ${this.machines.length}`);
          const r = (restores[i] ??= this.machines[i]!.restore());
          r.write(body.subarray(1));
        } else if (type === frameEnd) {
          ended = true;
        } else {
          fail(`unknown frame type ${type}`);
        }
        buf = buf.subarray(5 + len);
      }
    };
    const decide = (): void => {
      decided = true;
      // An image from before apps shared the log is the KV store's alone.
      if (!startsWith(buf, magicPrefix) && this.kv !== null) {
        legacy = this.kv.restore();
        legacy.write(buf);
        buf = new Uint8Array(0);
      }
    };
    return {
      write: (bytes: Uint8Array) => {
        if (legacy !== null) {
          legacy.write(bytes);
          return;
        }
        const joined = new Uint8Array(buf.length + bytes.length);
        joined.set(buf);
        joined.set(bytes, buf.length);
        buf = joined;
        if (!decided && buf.length >= magicPrefix.length) decide();
        if (legacy === null && decided) take();
      },
      finish: () => {
        if (!decided) decide();
        if (legacy === null) take();
        if (legacy !== null) {
          legacy.finish();
          this.sessions = new Map();
          return;
        }
        const h = header as { index: number; timeMs: number; sessions: Map<string, Session> } | null;
        if (h === null || !ended || buf.length > 0) return fail('incomplete');
        // Apps with no piece in the image start empty.
        const all = this.machines.map((m, i) => restores[i] ?? m.restore());
        for (const r of all) r.finish();
        this.appliedIndex = h.index;
        this.timeMs = h.timeMs;
        this.sessions = h.sessions;
      },
    };
  }

  digest(): string {
    const h = createHash('sha256');
    h.update(`${this.timeMs}\n`);
    for (const [k, s] of this.sessions) h.update(`${k}\u0000${s.seq}\u0000`).update(s.result);
    this.names.forEach((n, i) => h.update(`\n${n}:${this.machines[i]!.digest()}`));
    return h.digest('hex');
  }
}

/** The first bytes of every router image: a header frame's length, type and the start of its tuple. */
const magicPrefix = (() => {
  const f = frame(frameHeader, cborEncode([magic, imageVersion]));
  // Bytes 0-3 (the length) differ per image; compare from the type byte on, up to the magic's end.
  return f.subarray(0, 5 + 2 + magic.length);
})();

function startsWith(buf: Uint8Array, prefix: Uint8Array): boolean {
  if (buf.length < prefix.length) return false;
  for (let i = 4; i < prefix.length; i++) {
    // The tuple's length byte (offset 5) differs (6 elements in an image, 2 in the prefix).
    if (i === 5) continue;
    if (buf[i] !== prefix[i]) return false;
  }
  return true;
}

function frame(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, true);
  out[4] = type;
  out.set(body, 5);
  return out;
}
