// The bytes a worker's V8 heap holds once garbage is collected: what a node really keeps, for
// comparing nodes (a witness against a full voter). Heap in use without a collection also counts
// garbage, and so depends on when the last collection ran more than on what is kept.
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | null = null;

/** Runs a full collection (exposing V8's gc to this isolate once), then reads the heap in use. */
export function retainedHeapBytes(): number {
  if (collect === null) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  collect();
  return getHeapStatistics().used_heap_size;
}
