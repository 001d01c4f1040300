// Entry of every piscina pool thread: re-exports the task function of the module named in the
// pool's workerData.entry, registering tsx first only when that module is TypeScript (threads do
// not inherit the main thread's loader on Node 20; a compiled concur's pools need none).
import { workerData } from 'piscina';
import { enableTypeScript, isTypeScriptModule } from './typescript-loader.mjs';

if (isTypeScriptModule(workerData.entry)) await enableTypeScript();
const mod = await import(workerData.entry);
export default mod.default;
