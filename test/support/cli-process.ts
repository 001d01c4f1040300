// Runs `concur start` as a real child process for tests: waits for its API URL, and kills or
// interrupts it like a user would (SIGKILL for a crash, SIGINT for Ctrl-C).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/concur.mjs', import.meta.url));

export interface StartedCli {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `concur start --port 0 ARGS` from the repo's bin, or another package root's (`cliBin`). */
export async function startCli(args: string[], timeoutMs = 30_000, cliBin = bin): Promise<StartedCli> {
  const child = spawn(process.execPath, [cliBin, 'start', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`concur start printed no URL within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = () => {
      const m = /HTTP API on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`concur start exited with ${code} before serving:\n${out}`));
    });
  });
  return { child, url, output: () => out, exited };
}

/** Waits until GET /cluster names a leader. */
export async function waitForLeader(url: string, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = (await (await fetch(`${url}/cluster`)).json()) as { leader: number | null };
    if (s.leader !== null) return s.leader;
    if (Date.now() > deadline) throw new Error(`no leader within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Runs the real CLI to completion, asynchronously (an API server in the calling process keeps running). */
export function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/concur.mjs', ...args], { cwd: repoRoot, timeout: 60_000, env: { ...process.env, FORCE_COLOR: '0' } }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

/** A port nothing listens on: bind one, note it, close it. */
export async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
