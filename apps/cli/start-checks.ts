// What `concur start` checks before any worker starts: the data directory can be created and
// written, the host is an address of this machine and the ports can be bound, and who may reach
// the API (a non-loopback host needs a token or an explicit --insecure). Each problem is one
// UsageError line (exit 2) saying what is wrong and what to do; never a stack trace.
import { mkdirSync, readdirSync, rmdirSync, statSync, type Stats } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { createServer } from 'node:net';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from './options.ts';
import { makeDirs } from '../../runtime/storage/make-dirs.ts';

const errnoCode = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (err) {
    // ENOTDIR: a file stands where a directory should, further up; the walk up finds it.
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return null;
    throw new UsageError(`cannot use --data-dir: ${path} cannot be examined (${errnoCode(err)}); pick another directory`);
  }
}

/** Why `mkdir` refused, in words a person can act on. */
function mkdirRefusal(dir: string, code: string): string {
  const parent = dirname(dir);
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `no permission to create ${dir} in ${parent}`;
    case 'EROFS':
      return `${parent} is on a read-only file system`;
    case 'ENOSPC':
      return `no space left on the device of ${parent}`;
    case 'EEXIST':
      return `${dir} exists but is not a directory (a symbolic link to nothing?)`;
    case 'ENOENT':
      // A parent that exists yet answers "no such file" for a child (/proc, /sys, a dangling
      // link) holds no directories of ours. Node's recursive mkdir loops on this forever.
      return `${parent} does not allow directories to be created in it (a virtual file system such as /proc?)`;
    default:
      return `creating ${dir} failed (${code})`;
  }
}

/**
 * Makes sure `dir` is a directory this process can write, creating it (and missing parents) if
 * needed, with makeDirs (Node's recursive mkdir spins forever under /proc), each refusal in words.
 */
export function prepareDataDir(dir: string): string {
  const abs = resolve(dir);
  let at = abs;
  let st = statOrNull(at);
  while (st === null) {
    const up = dirname(at);
    if (up === at) throw new UsageError(`cannot use --data-dir ${dir}: no part of the path exists`);
    at = up;
    st = statOrNull(at);
  }
  if (!st.isDirectory()) {
    throw new UsageError(
      at === abs
        ? `--data-dir ${dir} is a file, not a directory; give a directory (one that does not exist yet is created)`
        : `cannot create --data-dir ${dir}: ${at} is a file, not a directory; pick another path`,
    );
  }
  try {
    makeDirs(abs);
  } catch (err) {
    const d = (err as NodeJS.ErrnoException).path ?? abs;
    throw new UsageError(`cannot create --data-dir ${dir}: ${mkdirRefusal(d, errnoCode(err))}; pick another directory`);
  }
  // Permission bits do not tell (root ignores them; a read-only mount does not show in them):
  // create something and remove it again.
  const probe = join(abs, `.concur-write-check-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
  } catch (err) {
    const code = errnoCode(err);
    const why = code === 'EACCES' || code === 'EPERM' ? 'no permission to write in it' : code === 'EROFS' ? 'it is on a read-only file system' : code === 'ENOSPC' ? 'no space left on its device' : `writing in it failed (${code})`;
    throw new UsageError(`cannot use --data-dir ${dir}: ${why}; pick a directory this user can write`);
  }
  // Each node keeps its files in DIR/node-<id>: something else by that name would stop it.
  for (const entry of readdirSync(abs, { withFileTypes: true })) {
    if (/^node-\d+$/.test(entry.name) && !statOrNull(join(abs, entry.name))?.isDirectory()) {
      throw new UsageError(`--data-dir ${dir} holds ${entry.name}, which is not a directory: a node keeps its files in a directory of that name; move it aside`);
    }
  }
  return abs;
}

/** The addresses `host` stands for: itself when it is an IP address, else what it resolves to. */
export async function hostAddresses(host: string): Promise<string[]> {
  if (isIP(host) !== 0) return [host];
  try {
    return (await lookup(host, { all: true })).map((a) => a.address);
  } catch (err) {
    throw new UsageError(`--host ${host} is neither an IP address nor a name this machine resolves (${errnoCode(err)}); give an address of this machine, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)`);
  }
}

/** True when every address is a loopback one: only this machine can connect. */
export function isLoopback(addresses: readonly string[]): boolean {
  const loopback = (a: string) => /^127\./.test(a) || /^::ffff:127\./i.test(a) || a === '::1';
  return addresses.length > 0 && addresses.every(loopback);
}

function localAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((i) => i.family === 'IPv4')
    .map((i) => i.address);
}

/**
 * Binds `host:port` for a moment and lets go, so an address this machine does not have, a port
 * in use or one that needs privileges is refused before any worker starts.
 */
export async function checkListen(host: string, port: number, flag: string): Promise<void> {
  const server = createServer();
  const problem = await new Promise<string | null>((done) => {
    server.once('error', (err) => done(listenRefusal(host, port, flag, errnoCode(err))));
    server.listen({ host, port, exclusive: true }, () => done(null));
  });
  if (problem === null) await new Promise((r) => server.close(r));
  else throw new UsageError(problem);
}

/** One line for a listen that failed with `code`, shared with the API's own listen. */
export function listenRefusal(host: string, port: number, flag: string, code: string): string {
  switch (code) {
    case 'EADDRNOTAVAIL':
      return `--host ${host} is not an address of this machine (its addresses: ${localAddresses().join(', ') || 'none found'}); use one of them, or 0.0.0.0 for every interface`;
    case 'EADDRINUSE':
      return `port ${port} on ${host} is in use; pick another with ${flag}${flag.includes('client-ports') ? '' : ' (0 picks a free one)'}`;
    case 'EACCES':
    case 'EPERM':
      return `port ${port} on ${host} needs privileges this user lacks (ports below 1024 do); pick one from 1024 up with ${flag}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return `--host ${host} is neither an IP address nor a name this machine resolves (${code}); give an address of this machine, e.g. 127.0.0.1 or 0.0.0.0`;
    default:
      return `cannot listen on ${host} port ${port} (${code}); check --host and ${flag}`;
  }
}

/** Who may reach the API: a non-loopback host needs a token (or --insecure, said out loud). */
export function accessProblem(o: { host: string; loopback: boolean; token: boolean; insecure: boolean; respPort: string | null }): string | null {
  if (o.loopback || o.insecure) return null;
  if (!o.token) return `--host ${o.host} lets other machines reach the API, which can crash nodes and change data; give --token-file FILE (every request must then carry the token), or --insecure to run it open anyway`;
  // The Redis protocol door has no password of its own: a token on the HTTP API would not cover it.
  if (o.respPort !== null) return `${o.respPort} has no authentication: on --host ${o.host} anyone who reaches the port can read and write the store; serve it on a loopback host, or add --insecure to accept that`;
  return null;
}
