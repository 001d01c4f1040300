// Piscina task entry (see runtime/pool.ts): spins for the given time and reports the gaps it saw.
import { scanGaps, type StallScan } from './stalls.ts';

export default function stallTask(durationMs: number): StallScan {
  return scanGaps(durationMs);
}
