// A deliberately broken lock service, for `concur chaos --workload lock --break grant-while-held`
// and its test only: the built-in `lock` app (same name, commands, routes) whose state machine
// grants an acquire while another client holds the lock. It reaches the nodes' workers as an app
// module path (ClusterOptions.apps → NodeConfig.apps → loadApps on each worker), so no cluster or
// node code knows about it. Never run it for real.
import type { App } from '../platform/app.ts';
import { lockApp } from '../lock/app.ts';
import { LockStateMachine } from '../lock/state-machine.ts';

export const unsafeLockApp: App = {
  ...lockApp,
  description: 'BROKEN on purpose (chaos tests): grants a held lock to another client',
  createStateMachine: () => new LockStateMachine({ grantWhileHeld: true }),
};

export default unsafeLockApp;
