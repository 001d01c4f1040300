// The app interface (`concur/apps`): what an app on the replicated log implements (App,
// AppStateMachine, its routes) and the state machine contract underneath (StateMachine,
// SnapshotImage, SnapshotRestore). Re-exports only.
export * from './platform/app.ts';
export * from './state-machine.ts';
