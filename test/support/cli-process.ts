// Runs `concur start` as a real child process for tests: waits for its API URL, and kills or
// interrupts it like a user would (SIGKILL for a crash, SIGINT for Ctrl-C).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/concur.mjs', import.meta.url));

export interface StartedCli {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startCli(args: string[], timeoutMs = 30_000): Promise<StartedCli> {
  const child = spawn(process.execPath, [bin, 'start', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
