// The app interface: what an app on concur's replicated log is. An app is a deterministic state
// machine (apply committed commands in log order, answer local queries, snapshot and restore its
// whole state) plus, optionally, HTTP routes and CLI commands. Several apps share one log: each
// command carries its app's name (apps/platform/envelope.ts) and the router (router.ts) hands it
// to that app. Time reaches apps only through the log (AppContext.timeMs), never from a clock.
import type { SnapshotImage, SnapshotRestore } from '../state-machine.ts';

/** Where a command applies: its log index, and the log's time there. */
export interface AppContext {
  /** The log index (slot, on Paxos) of the entry being applied. Strictly increasing. */
  readonly index: number;
  /**
   * The log's time in milliseconds: the sum of the clock entries the leaders proposed so far,
   * each measured on the proposing leader's monotonic clock (see README "Time on the log"). The
   * same on every replica at the same index; never runs faster than real time.
   */
  readonly timeMs: number;
}

export interface AppStateMachine {
  /**
   * Applies one command (the app's own bytes, a view the app must copy from if it keeps them)
   * and returns the result bytes for the client. Deterministic: no clocks, randomness or I/O.
   * Must not throw on bad bytes: answer an error result, the same on every replica.
   */
  apply(command: Uint8Array, ctx: AppContext): Uint8Array;
  /** apply() of the command at bytes[start, end), for an app that reads it in place (no view per command). */
  applyAt?(bytes: Uint8Array, start: number, end: number, ctx: AppContext): Uint8Array;
  /** The log's time moved on (a clock entry at ctx.index): expire what has expired. */
  onTime?(ctx: AppContext): void;
  /** Whether the leader should keep proposing clock entries (e.g. a lock is held with a TTL). */
  wantsTime?(): boolean;
  /** A read-only query against the state as applied here (the answer's bytes are the app's format). */
  query(q: string): Uint8Array | undefined;
  /**
   * The kv app only: a key's value, for the KV API's read paths (reads without an app name).
   * Apart from query so that a query language of its own cannot be mistaken for a key.
   */
  readKey?(key: string): Uint8Array | undefined;
  /** An image of the whole state (captured now, serialized lazily in pieces). */
  snapshot(): SnapshotImage;
  /** Replaces the whole state with an image's, fed in pieces; nothing changes until finish(). */
  restore(): SnapshotRestore;
  /** Hex digest of the whole state: equal on replicas that applied the same commands. */
  digest(): string;
}

/** What an app's HTTP routes get to serve requests with. */
export interface AppHttpContext {
  /** Proposes one of this app's commands through the log; resolves with the app's result bytes. */
  submit(command: Uint8Array, timeoutMs: number): Promise<{ index: number; result: Uint8Array }>;
  /** Runs a query on the leader after a read index (linearizable), or on a node by `mode`. */
  query(q: string, timeoutMs: number): Promise<{ value: Uint8Array | null; index: number }>;
}

/**
 * What a GET route may answer instead of one JSON body: a stream of server-sent events (e.g. a
 * chat room's new messages). The API sends 200 with `text/event-stream` headers, then calls
 * `events`, which writes with `stream.send` until `stream.signal` aborts (the client went away,
 * or the server closes) or it returns (the stream ends). A throw ends the stream with an `error`
 * event. Heartbeat comments and the bound on a slow client's backlog are the API's.
 */
export interface AppEventsAnswer {
  events(stream: AppEventStream): Promise<void>;
}

export interface AppEventStream {
  /** Writes one event: `data` as JSON, with an optional event name and id (what `Last-Event-ID` echoes). */
  send(data: unknown, opts?: { event?: string; id?: string | number }): void;
  /** Writes an SSE comment line (clients ignore it; useful to show progress to `curl -N`). */
  comment(text: string): void;
  /** Aborts when the stream is over: stop polling and return. */
  readonly signal: AbortSignal;
  /** The `Last-Event-ID` header a reconnecting EventSource sends (the id of the last event it got), or null. */
  readonly lastEventId: string | null;
}

export interface AppRequest {
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body (undefined for none). */
  body: unknown;
  /** Aborts when the client goes away before the answer: stop waiting (and undo what waits for it). */
  signal: AbortSignal;
}

/** One HTTP route of an app, mounted under `/<app name>` (e.g. `/locks/:name/acquire`). */
export interface AppRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** A path pattern with `:param` segments, relative to the server root (e.g. `/locks/:name`). */
  path: string;
  /**
   * Answers a request. `body` is the parsed JSON body (undefined for none). Return a status and a
   * JSON-able body; throw AppHttpError for a clean 4xx. A GET route may answer a stream of
   * server-sent events instead (AppEventsAnswer).
   */
  handle(req: AppRequest, ctx: AppHttpContext): Promise<{ status: number; body: unknown } | AppEventsAnswer>;
}

export class AppHttpError extends Error {
  override name = 'AppHttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** An app: a name (which its commands carry), a state machine factory, and optional front doors. */
export interface App {
  /** Lower-case letters, digits and dashes; unique per cluster. */
  readonly name: string;
  /** One line for `concur start --help` and GET /cluster. */
  readonly description?: string;
  /** A fresh, empty state machine (one per node). */
  createStateMachine(): AppStateMachine;
  /** HTTP routes served by `concur start` beside the KV API. */
  readonly routes?: readonly AppRoute[];
  /**
   * CLI commands: `concur app ./my-app.ts <command> ...` loads the module and calls this with a
   * commander Command (already carrying `--url` and `--timeout-ms`) to add subcommands to, and a
   * client of the running cluster's HTTP API.
   */
  readonly cli?: (cmd: import('commander').Command, api: AppCliApi) => void;
}

/** What an app's CLI commands reach the cluster with: its HTTP API (`--url`). */
export interface AppCliApi {
  /** One request to the API; JSON in and out. Resolves with the status and the parsed body. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
}

export const appNamePattern = /^[a-z][a-z0-9-]{0,31}$/;
