// Piscina task entry (see runtime/pool.ts): checks one key's sub-history off the main thread.
// Holds no state between tasks and never touches other keys, files or the cluster.
import { type KeyTask, type KeyVerdict, checkKey } from './checker.ts';

export default function checkKeyTask(task: KeyTask): KeyVerdict {
  return checkKey(task.key, task.ops, task.settings);
}
