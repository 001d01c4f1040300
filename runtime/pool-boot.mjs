// Entry of every piscina pool thread: re-exports the task function of the module named in the
// pool's workerData.entry, registering tsx first only when that module is TypeScript (threads do
// not inherit the main thread's loader on Node 20; a compiled concur's pools need none).
import { workerData } from 'piscina';

if (/\.[cm]?tsx?$/.test(new URL(workerData.entry).pathname)) (await import('tsx/esm/api')).register();
const mod = await import(workerData.entry);
export default mod.default;
