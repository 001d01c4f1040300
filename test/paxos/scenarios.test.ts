// Every Paxos scenario transcript in testdata/ (see transcript.ts for the commands); run with
// CONCUR_REWRITE=1 to rewrite their expected output, then read the diff before keeping it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runTranscript } from './transcript.ts';

const dir = fileURLToPath(new URL('./testdata/', import.meta.url));

for (const name of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
  test(`scenario ${name}`, () => {
    const mismatches = runTranscript(join(dir, name));
    assert.is(mismatches.length, 0, `\n${mismatches.join('\n\n')}`);
  });
}

test.run();
