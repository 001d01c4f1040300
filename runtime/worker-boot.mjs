// Entry of every actor Worker: loads the module named in workerData.entry (the actor host). It
// registers tsx first only when that module or the actor's (workerData.module) is TypeScript:
// workers do not inherit the main thread's loader on Node 20, and a compiled concur (dist/) with a
// compiled actor starts its workers without a TypeScript compiler, which is most of their start.
import { workerData } from 'node:worker_threads';

const typeScript = /\.[cm]?tsx?$/;
const isTypeScript = (url) => typeof url === 'string' && typeScript.test(new URL(url).pathname);

if (isTypeScript(workerData.entry) || isTypeScript(workerData.module)) (await import('tsx/esm/api')).register();
await import(workerData.entry);
