// Starts bench/socket-floor.mjs as a child process: what both comparisons and its test share.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./socket-floor.mjs', import.meta.url));

export interface SocketFloor {
  child: ChildProcess;
  port: number;
  /** Stops it and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts the floor server for `kind` on a free loopback port; rejects if it prints no port within `timeoutMs`. */
export function startSocketFloor(kind: 'resp' | 'http', timeoutMs = 20_000): Promise<SocketFloor> {
  const child = spawn(process.execPath, [script, kind], { stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`socket-floor printed no port within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), stop });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`socket-floor exited with ${code}`));
    });
  });
}
