// Entry of every actor Worker: loads the module named in workerData.entry (the actor host). It
// registers tsx first only when that module or the actor's (workerData.module) is TypeScript:
// workers do not inherit the main thread's loader on Node 20, and a compiled concur (dist/) with a
// compiled actor starts its workers without a TypeScript compiler, which is most of their start.
import { workerData } from 'node:worker_threads';
import { enableTypeScript, isTypeScriptModule } from './typescript-loader.mjs';

if (isTypeScriptModule(workerData.entry) || isTypeScriptModule(workerData.module)) await enableTypeScript();
await import(workerData.entry);
