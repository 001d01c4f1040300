// The shared storage behaviour suite run against the memory store, one fresh MemoryDisk per test.
import { createMemoryDisk, openMemory } from '../../runtime/storage/memory.ts';
import { behaviourSuite } from './behaviour.ts';

const test = behaviourSuite('memory', () => {
  const disk = createMemoryDisk();
  return {
    open: (o = {}) => openMemory({ disk, ...o }),
    openRaw: (o) => openMemory({ disk, ...(o as object) }),
  };
});

test.run();
