// `concur bench transport`: messages between two Workers over a SharedArrayBuffer ring versus
// postMessage on a MessageChannel, measured in the same run, opaque bytes and cbor records.
// Each run is checked end to end (count and checksum); a mismatch fails the benchmark.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { Ring } from '../runtime/ring.ts';
import type { TransportJob } from './transport-worker.ts';

const bootUrl = new URL('../runtime/worker-boot.mjs', import.meta.url);
const workerEntry = new URL('./transport-worker.ts', import.meta.url).href;

export interface TransportRun {
  via: 'ring' | 'port';
  encoding: 'opaque' | 'cbor';
  payloadBytes: number;
  count: number;
  msgsPerSec: number;
  mbPerSec: number;
  checksumOk: boolean;
  consumerWakeups: number;
}

function start(job: Omit<TransportJob, 'entry'>, transfer: MessagePort[] = []): { worker: Worker; result: Promise<Record<string, number | boolean | string>>; ready: Promise<void> } {
  const worker = new Worker(bootUrl, { workerData: { ...job, entry: workerEntry }, transferList: transfer });
  let readyResolve!: () => void;
  const ready = new Promise<void>((r) => (readyResolve = r));
  const result = new Promise<Record<string, number | boolean | string>>((resolve, reject) => {
    worker.on('message', (m) => (m.ready ? readyResolve() : resolve(m)));
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`transport ${job.role} worker exited with code ${code} before reporting`)));
  });
  if (job.role === 'produce') readyResolve();
  return { worker, result, ready };
}

/** One measured transfer of `count` messages from one Worker to another. */
export async function runTransport(via: 'ring' | 'port', encoding: 'opaque' | 'cbor', payloadBytes: number, count: number, ringBytes = 1 << 20): Promise<TransportRun> {
  const base = { via, encoding, count, payloadBytes };
  let consumerJob: Omit<TransportJob, 'entry'>;
  let producerJob: Omit<TransportJob, 'entry'>;
  const transfers: [MessagePort[], MessagePort[]] = [[], []];
  if (via === 'ring') {
    const ring = Ring.handle(ringBytes);
    consumerJob = { ...base, role: 'consume', ring };
    producerJob = { ...base, role: 'produce', ring };
  } else {
    const { port1, port2 } = new MessageChannel();
    consumerJob = { ...base, role: 'consume', port: port2 };
    producerJob = { ...base, role: 'produce', port: port1 };
    transfers[0] = [port2];
    transfers[1] = [port1];
  }
  const consumer = start(consumerJob, transfers[0]);
  await consumer.ready;
  const producer = start(producerJob, transfers[1]);
  const [p, c] = await Promise.all([producer.result, consumer.result]);
  const seconds = (Number(c.endedAt) - Number(p.startedAt)) / 1000;
  await Promise.all([producer.worker.terminate(), consumer.worker.terminate()]);
  return {
    via,
    encoding,
    payloadBytes,
    count,
    msgsPerSec: Math.round(count / seconds),
    mbPerSec: Math.round((count * payloadBytes) / seconds / 1e6),
    checksumOk: p.checksum === c.checksum && c.frames === count,
    consumerWakeups: Number(c.wakeups ?? 0),
  };
}

export interface TransportReport {
  ringMsgsPerSec: number;
  postMessageMsgsPerSec: number;
  ratio: number;
  cbor: { ringMsgsPerSec: number; postMessageMsgsPerSec: number; ratio: number };
  runs: TransportRun[];
}

/** The whole benchmark: 64-byte and 1-KiB messages, opaque and cbor, ring and postMessage. */
export async function benchTransport(opts: { ringCount: number; portCount: number; onRun?: (r: TransportRun) => void }): Promise<TransportReport> {
  const runs: TransportRun[] = [];
  for (const encoding of ['opaque', 'cbor'] as const) {
    for (const payloadBytes of [64, 1024]) {
      for (const via of ['ring', 'port'] as const) {
        const r = await runTransport(via, encoding, payloadBytes, via === 'ring' ? opts.ringCount : opts.portCount);
        if (!r.checksumOk) throw new Error(`transport ${via}/${encoding}/${payloadBytes}B delivered wrong frames (checksum or count mismatch)`);
        runs.push(r);
        opts.onRun?.(r);
      }
    }
  }
  const find = (via: string, encoding: string) => runs.find((r) => r.via === via && r.encoding === encoding && r.payloadBytes === 64)!.msgsPerSec;
  const ratio = (a: number, b: number) => Math.round((a / b) * 10) / 10;
  return {
    ringMsgsPerSec: find('ring', 'opaque'),
    postMessageMsgsPerSec: find('port', 'opaque'),
    ratio: ratio(find('ring', 'opaque'), find('port', 'opaque')),
    cbor: { ringMsgsPerSec: find('ring', 'cbor'), postMessageMsgsPerSec: find('port', 'cbor'), ratio: ratio(find('ring', 'cbor'), find('port', 'cbor')) },
    runs,
  };
}
