// Entry of every piscina pool thread: registers tsx (workers do not inherit it on Node 20), then
// re-exports the task function of the TypeScript module named in the pool's workerData.entry.
import { register } from 'tsx/esm/api';
import { workerData } from 'piscina';

register();
const mod = await import(workerData.entry);
export default mod.default;
