// The Redis protocol (RESP2, and RESP3 after HELLO 3) door to concur's KV store, on node:net:
// accepts connections up to connectionsMax, runs each as a RespConnection over one shared door,
// answers commands past their deadline with TIMEOUT, and closes cleanly. Must never reach past
// the ClusterBackend interface: it submits and reads exactly as the HTTP API does.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { ClusterBackend } from '../http/backend.ts';
import { commandTable, type CommandSpec } from './commands.ts';
import { RespConnection } from './connection.ts';
import { KvDoor } from './door.ts';
import { kvCommands } from './kv-commands.ts';
import { error } from './reply.ts';
import { serverCommands } from './server-commands.ts';
import { type RespSettings, respSettings } from './settings.ts';

export interface RespHooks {
  /** Called with unexpected errors (answered `-ERR internal error`); defaults to printing to stderr. */
  onInternalError?: (err: unknown) => void;
}

export interface RespServer {
  readonly server: Server;
  readonly host: string;
  readonly port: number;
  /** e.g. redis://127.0.0.1:6380 */
  readonly url: string;
  readonly settings: Readonly<RespSettings>;
  readonly door: KvDoor;
  /**
   * Stops accepting connections and frees the port (once this resolves another thread may listen
   * on it); the connections it has stay and are served until they end or `close` is called.
   */
  stopListening(): Promise<void>;
  /** Stops accepting, lets every connection finish what it was asked (up to shutdownGraceMs), then cuts. */
  close(): Promise<void>;
}

/** How often commands past their deadline are looked for (the deadline is kept to within this). */
const deadlineSweepMs = 100;

/** Thrown when the door cannot serve this cluster (it does not run the kv app). */
export class RespConfigError extends Error {}

export async function startRespServer(backend: ClusterBackend, overrides: Partial<RespSettings> = {}, hooks: RespHooks = {}): Promise<RespServer> {
  const settings = respSettings(overrides);
  if (backend.apps !== undefined && !backend.apps.some((a) => a.name === 'kv')) {
    throw new RespConfigError(`the Redis protocol serves the kv app, which does not run on this cluster (it runs ${backend.apps.map((a) => a.name).join(', ')}); start it with --apps kv,...`);
  }
  const onInternalError = hooks.onInternalError ?? ((err: unknown) => process.stderr.write(`concur resp: internal error: ${(err as Error)?.stack ?? String(err)}\n`));
  const door = new KvDoor(backend, settings, onInternalError);
  const specs: CommandSpec[] = [];
  specs.push(...kvCommands, ...serverCommands(() => specs));
  const table = commandTable(specs);
  const connections = new Set<RespConnection>();

  // Half-open: a client that sends its commands and then ends its side still gets its answers.
  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    if (connections.size >= settings.connectionsMax) {
      door.stats.connectionsRejected++;
      socket.on('error', () => socket.destroy());
      socket.end(error('ERR max number of clients reached'));
      return;
    }
    door.stats.connectionsAccepted++;
    const conn = new RespConnection(socket, door, table);
    connections.add(conn);
    socket.once('close', () => connections.delete(conn));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const c of connections) c.expire(now);
  }, deadlineSweepMs);
  sweep.unref();
  // 'close' comes once the server listens no more and its last connection has ended.
  let ended = false;
  server.once('close', () => {
    ended = true;
    clearInterval(sweep);
  });

  const address = server.address() as AddressInfo;
  door.port = address.port;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  return {
    server,
    host: address.address,
    port: address.port,
    url: `redis://${urlHost}:${address.port}`,
    settings,
    door,
    stopListening() {
      // The listening socket is closed at once (libuv closes its descriptor in the call).
      if (server.listening) server.close();
      return new Promise<void>((resolve) => setImmediate(resolve));
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        if (ended) return resolve();
        for (const c of connections) c.shutdown();
        const cut = setTimeout(() => {
          for (const c of connections) c.destroy();
        }, settings.shutdownGraceMs);
        server.once('close', () => {
          clearTimeout(cut);
          resolve();
        });
        if (server.listening) server.close();
      });
      return closing;
    },
  };
}
