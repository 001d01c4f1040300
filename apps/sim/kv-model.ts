// The reference the replica simulator judges KV answers by: a KV state machine fed the committed
// log in index order (learned from whatever node committed each entry), remembering each key's
// value and each entry's result by index, and the state digest at every index. Checks queue
// until the model reaches the index they need. It never trusts a node's claim about the state.
import { AppRouter } from '../platform/router.ts';
import { builtinAppsNamed } from '../platform/registry.ts';
import type { Entry } from '../../protocols/raft/index.ts';
import { EntryKind } from '../../protocols/raft/index.ts';
import { decodeCommand, keysWritten, KvDecodeError } from '../kv/commands.ts';

/** What a key held from an index on: its value (null: absent). */
interface Change {
  index: number;
  value: Uint8Array | null;
}

export class KvModel {
  // The KV store behind the same app router the nodes run (apps: ['kv']), so digests compare.
  private readonly kv = new AppRouter(builtinAppsNamed(['kv']));
  /** Committed entries learned so far, by index (some may arrive before earlier ones). */
  private readonly committed = new Map<number, Entry>();
  /** The model has applied every entry through this index. */
  applied = 0;
  private readonly history = new Map<string, Change[]>();
  private readonly results = new Map<number, Uint8Array>();
  /** The command bytes of every normal entry applied, by index (to check acks against). */
  private readonly commands = new Map<number, Uint8Array>();
  private readonly digests = new Map<number, string>();
  private waiting: { index: number; run: () => string | null }[] = [];

  /** An entry some node committed; returns a violation when it contradicts one learned before. */
  learn(e: Entry): string | null {
    const known = this.committed.get(e.index);
    if (known !== undefined) return null; // identity across nodes is LogMatching's and StateMachineSafety's job
    if (e.index <= this.applied) return null;
    this.committed.set(e.index, { index: e.index, term: e.term, kind: e.kind, data: e.data.slice() });
    return this.advance();
  }

  private advance(): string | null {
    for (let next = this.committed.get(this.applied + 1); next !== undefined; next = this.committed.get(this.applied + 1)) {
      this.committed.delete(next.index);
      this.applyOne(next);
      const due = this.waiting.filter((w) => w.index <= this.applied);
      if (due.length > 0) {
        this.waiting = this.waiting.filter((w) => w.index > this.applied);
        for (const w of due) {
          const err = w.run();
          if (err !== null) return err;
        }
      }
    }
    return null;
  }

  private applyOne(e: Entry): void {
    const index = e.index;
    if (e.kind === EntryKind.normal) {
      let keys: readonly string[] = [];
      try {
        keys = [...new Set(keysWritten(decodeCommand(e.data)))];
      } catch (err) {
        if (!(err instanceof KvDecodeError)) throw err;
      }
      const before = keys.map((k) => this.kv.readLocal(k));
      this.commands.set(index, e.data);
      this.results.set(index, this.kv.apply(index, e.data, 0, e.data.length).slice());
      keys.forEach((key, i) => {
        const after = this.kv.readLocal(key);
        if (after !== before[i]) {
          let h = this.history.get(key);
          if (h === undefined) this.history.set(key, (h = []));
          h.push({ index, value: after ?? null });
        }
      });
    }
    this.applied = index;
    this.digests.set(index, this.kv.digest());
  }

  /** Runs `check` once the model has applied `index` (at once if it has). */
  when(index: number, check: () => string | null): string | null {
    if (index <= this.applied) return check();
    this.waiting.push({ index, run: check });
    return null;
  }

  /** The value of `key` in the state after applying entries 1..index (the model must have got there). */
  valueAt(key: string, index: number): Uint8Array | null {
    const h = this.history.get(key);
    if (h === undefined) return null;
    let v: Uint8Array | null = null;
    for (const c of h) {
      if (c.index > index) break;
      v = c.value;
    }
    return v;
  }

  /** Every value `key` held at some index in [lo, hi]. */
  valuesBetween(key: string, lo: number, hi: number): (Uint8Array | null)[] {
    const out = [this.valueAt(key, lo)];
    for (const c of this.history.get(key) ?? []) if (c.index > lo && c.index <= hi) out.push(c.value);
    return out;
  }

  /** The command committed at `index` (undefined: a no-op, or not reached). */
  entryAt(index: number): Uint8Array | undefined {
    return this.commands.get(index);
  }

  resultAt(index: number): Uint8Array | undefined {
    return this.results.get(index);
  }

  digestAt(index: number): string | undefined {
    return index === 0 ? new AppRouter(builtinAppsNamed(['kv'])).digest() : this.digests.get(index);
  }

  /** Checks left waiting (at the end of a run: indexes the model never reached). */
  get pendingChecks(): number {
    return this.waiting.length;
  }
}

export function sameBytes(a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): boolean {
  if (a === b) return true;
  if (a == null || b == null) return a == b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function show(v: Uint8Array | null | undefined): string {
  if (v == null) return 'absent';
  const text = new TextDecoder().decode(v);
  return /^[\x20-\x7e]*$/.test(text) ? JSON.stringify(text) : `<${v.length} bytes>`;
}
