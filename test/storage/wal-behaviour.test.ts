// The shared storage behaviour suite run against the WAL in a fresh temporary directory per test.
import { openWal } from '../../runtime/storage/wal.ts';
import { behaviourSuite } from './behaviour.ts';
import { tmpDir } from './helpers.ts';

const test = behaviourSuite('wal', () => {
  const dir = tmpDir();
  return {
    open: (o = {}) => openWal({ dir, ...o }),
    openRaw: (o) => openWal({ dir, ...(o as object) }),
  };
});

test.run();
