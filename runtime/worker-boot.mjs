// Entry of every actor Worker. Workers do not inherit tsx's loader on Node 20, so this
// registers it, then loads the TypeScript module named in workerData.entry.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
