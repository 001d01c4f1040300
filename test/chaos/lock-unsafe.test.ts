// The deliberately broken lock service `concur chaos --workload lock --break grant-while-held`
// runs: off by default; on, an acquire of a held lock is granted at once (the holder replaced);
// it reaches the workers as an app module with the lock app's name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { decodeLockResult, encodeLockCommand, type LockResult } from '../../apps/lock/commands.ts';
import { LockStateMachine } from '../../apps/lock/state-machine.ts';
import { loadApps } from '../../apps/platform/registry.ts';

function acquireTwice(sm: LockStateMachine): [LockResult, LockResult] {
  const a = decodeLockResult(sm.apply(encodeLockCommand({ op: 'acquire', lock: 'L', client: 'a', ttlMs: 1000, waitMs: 0 }), { index: 1, timeMs: 0 }));
  const b = decodeLockResult(sm.apply(encodeLockCommand({ op: 'acquire', lock: 'L', client: 'b', ttlMs: 1000, waitMs: 0 }), { index: 2, timeMs: 0 }));
  return [a, b];
}

test('grantWhileHeld: off by default; on, a held lock is granted to the next client at once', () => {
  const [a, b] = acquireTwice(new LockStateMachine());
  assert.equal(a, { r: 'granted', token: 1, expiresInMs: 1000 });
  assert.is(b.r, 'held');
  const broken = new LockStateMachine({ grantWhileHeld: true });
  const [a2, b2] = acquireTwice(broken);
  assert.is(a2.r, 'granted');
  assert.equal(b2, { r: 'granted', token: 2, expiresInMs: 1000 });
  assert.is(broken.state('L').holder?.client, 'b');
});

test('the broken app module loads as the lock app, with the broken state machine', async () => {
  const [app] = await loadApps([fileURLToPath(new URL('../../apps/chaos/lock-unsafe-app.ts', import.meta.url))]);
  assert.is(app!.name, 'lock');
  const [, b] = acquireTwice(app!.createStateMachine() as LockStateMachine);
  assert.is(b.r, 'granted');
});

test.run();
