// One end of a transport benchmark, run on its own Worker: produces or consumes `count`
// messages over a ring or a MessagePort and reports a checksum, so speed is never bought with
// lost or corrupted frames. Started through runtime/worker-boot.mjs.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Codec } from '../runtime/codec.ts';
import { Ring, type RingHandle } from '../runtime/ring.ts';

export interface TransportJob {
  entry: string;
  role: 'produce' | 'consume';
  via: 'ring' | 'port';
  encoding: 'opaque' | 'cbor';
  count: number;
  payloadBytes: number;
  ring?: RingHandle;
  port?: MessagePort;
}

export const benchShapes = [['type', 'seq', 'term', 'data']] as const;

const job = workerData as TransportJob;
const codec = new Codec(benchShapes);
const done = (result: object) => parentPort!.postMessage(result);

// The checksum of frame `seq`: a producer and a consumer must agree on every frame.
const mix = (sum: number, seq: number, byte: number) => (Math.imul(sum ^ seq, 0x01000193) + byte) >>> 0;

function makeFrame(seq: number, buf: Uint8Array): Uint8Array {
  buf[0] = seq & 0xff;
  buf[1] = (seq >>> 8) & 0xff;
  buf[2] = (seq >>> 16) & 0xff;
  buf[3] = (seq >>> 24) & 0xff;
  buf[buf.length - 1] = (seq * 7) & 0xff;
  if (job.encoding === 'opaque') return buf;
  return codec.encode({ type: 3, seq, term: 1, data: buf.subarray(0, Math.max(4, job.payloadBytes - 16)) });
}

function frameSum(sum: number, bytes: Uint8Array, start: number, end: number): number {
  if (job.encoding === 'opaque') {
    const seq = bytes[start]! | (bytes[start + 1]! << 8) | (bytes[start + 2]! << 16) | (bytes[start + 3]! << 24);
    return mix(sum, seq >>> 0, bytes[end - 1]!);
  }
  const m = codec.decode(bytes, start, end) as { seq: number; data: Uint8Array };
  return mix(sum, m.seq, m.data[0]!);
}

async function produce(): Promise<void> {
  const buf = new Uint8Array(job.payloadBytes);
  let expected = 0;
  // Absolute time (comparable across threads): the run is timed from the first send to the
  // consumer's last frame, so neither worker start-up nor a queue filled ahead counts.
  const startedAt = performance.timeOrigin + performance.now();
  if (job.via === 'ring') {
    const ring = new Ring(job.ring!);
    for (let seq = 0; seq < job.count; seq++) {
      const f = makeFrame(seq, buf);
      expected = mix(expected, seq, job.encoding === 'opaque' ? f[f.length - 1]! : buf[0]!);
      while (!ring.tryWriteQuiet(f)) {
        ring.publish();
        await ring.waitWritable(f.length, 1_000);
      }
      if ((seq & 63) === 63) ring.publish();
    }
    ring.publish();
  } else {
    const port = job.port!;
    for (let seq = 0; seq < job.count; seq++) {
      const f = makeFrame(seq, buf);
      expected = mix(expected, seq, job.encoding === 'opaque' ? f[f.length - 1]! : buf[0]!);
      port.postMessage(f);
      // Yield now and then so the port's queue is flushed rather than grown without bound.
      if ((seq & 4095) === 4095) await new Promise((r) => setImmediate(r));
    }
  }
  done({ role: 'produce', checksum: expected, startedAt });
}

async function consume(): Promise<void> {
  let sum = 0;
  let got = 0;
  let wakeups = 0;
  if (job.via === 'ring') {
    const ring = new Ring(job.ring!);
    const onFrame = (b: Uint8Array, s: number, e: number) => {
      sum = frameSum(sum, b, s, e);
    };
    parentPort!.postMessage({ role: 'consume', ready: true });
    while (got < job.count) {
      const n = ring.read(onFrame, 4096);
      if (n > 0) {
        got += n;
        continue;
      }
      wakeups++;
      await ring.doorbell.sleep(() => !ring.isEmpty(), 1_000);
    }
  } else {
    const port = job.port!;
    await new Promise<void>((resolve) => {
      port.on('message', (m: Uint8Array) => {
        sum = frameSum(sum, m, 0, m.length);
        if (++got === job.count) resolve();
      });
      parentPort!.postMessage({ role: 'consume', ready: true });
    });
    port.close();
  }
  done({ role: 'consume', checksum: sum, frames: got, wakeups, endedAt: performance.timeOrigin + performance.now() });
}

await (job.role === 'produce' ? produce() : consume());
