// Piscina task entry (see runtime/pool.ts): one spinner of a stall measurement (bench/stalls.ts).
import { runStallTask, type StallScan, type StallTask } from './stalls.ts';

export default function stallTask(task: StallTask): StallScan {
  return runStallTask(task);
}
