// The client pipeline (apps/cluster/client-pipeline.ts) against scripted nodes: what it sends
// (coalesced propose frames with seqs and streams, batched reads) and what it does with each
// answer (results, redirect, busy, silence, deadlines). The live path is covered by every
// cluster test; here each rule is pinned down where it can fail on its own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientPipeline, type PipelineRouting } from '../../apps/cluster/client-pipeline.ts';
import { decodeReads, encodeReadAnswers, ReadStatus, refusal, ResultsWriter } from '../../apps/cluster/client-wire.ts';
import { commandLength, encodeControl, FrameKind, proposeHeader, proposeStartsStream, proposeWantsResults } from '../../apps/cluster/wire.ts';
import { BusyError, DeadlineError, NodeStateError, NoLeaderError, NoQuorumError } from '../../apps/http/backend.ts';

interface Sent {
  to: number;
  kind: number;
  /** Propose frames: seqs, stream, flags and the commands as text. */
  firstSeq?: number;
  stream?: number;
  flags?: number;
  commands?: string[];
  /** Reads frames. */
  batch?: number;
  mode?: string;
  keys?: string[];
}

const text = new TextEncoder();
const untext = new TextDecoder();

function decodeSent(to: number, frame: Uint8Array): Sent {
  const kind = frame[1]!;
  if (kind === FrameKind.propose) {
    const h = proposeHeader(frame, 0, frame.length);
    const commands: string[] = [];
    let at = 16;
    for (let i = 0; i < h.count; i++) {
      const len = commandLength(frame, at);
      commands.push(untext.decode(frame.subarray(at + 4, at + 4 + len)));
      at += 4 + len;
    }
    return { to, kind, firstSeq: h.firstSeq, stream: h.stream, flags: h.flags, commands };
  }
  const r = decodeReads(frame, 0, frame.length);
  return { to, kind, batch: r.batch, mode: r.mode, keys: r.reads.map((x) => x.key) };
}

class FakeCluster implements PipelineRouting {
  leaderId: number | null = 1;
  up = new Set([1, 2, 3]);
  cut: [number, number][] = [];
  sent: Sent[] = [];
  leader(): number | null {
    return this.leaderId;
  }
  leaderSeenBy(): number | null {
    return this.leaderId;
  }
  isUp(id: number): boolean {
    return this.up.has(id);
  }
  reachable(a: number, b: number): boolean {
    return !this.cut.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
  }
  hasQuorum(id: number): boolean {
    return this.up.has(id) && !this.cut.some(([x, y]) => x === id || y === id);
  }
  readNodes(): number[] {
    return [...this.up];
  }
  send(to: number, frame: Uint8Array): void {
    this.sent.push(decodeSent(to, frame.slice()));
  }
  take(): Sent[] {
    const s = this.sent;
    this.sent = [];
    return s;
  }
}

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function results(stream: number, firstSeq: number, items: [number, string][]): Uint8Array {
  const w = new ResultsWriter();
  w.begin(stream, firstSeq);
  for (const [index, r] of items) w.add(index, text.encode(r));
  return w.finish().slice();
}

function feed(p: ClientPipeline, from: number, frame: Uint8Array): void {
  p.onFrame(from, frame, 0, frame.length);
}

test('writes of one turn go out as one propose frame; results resolve each with its own answer, in order', async () => {
  const c = new FakeCluster();
  const p = new ClientPipeline(c);
  const answers = Array.from({ length: 100 }, (_, i) => p.submit(text.encode(`c${i}`), 5_000, null));
  await tick();
  const sent = c.take();
  assert.is(sent.length, 1);
  assert.equal(sent[0]!.commands, Array.from({ length: 100 }, (_, i) => `c${i}`));
  assert.is(sent[0]!.firstSeq, 1);
  assert.is(sent[0]!.flags! & proposeWantsResults, proposeWantsResults);
  assert.is(sent[0]!.flags! & proposeStartsStream, proposeStartsStream, 'the first frame to a node starts the stream there');
  feed(p, 1, results(0, 1, Array.from({ length: 100 }, (_, i) => [10 + i, `r${i}`])));
  const got = await Promise.all(answers);
  assert.equal(got.map((g) => [g.index, untext.decode(g.result)]), Array.from({ length: 100 }, (_, i) => [10 + i, `r${i}`]));
  // The next write continues the stream, without starting it again.
  p.submit(text.encode('next'), 5_000, null).catch(() => undefined);
  await tick();
  const more = c.take();
  assert.is(more[0]!.firstSeq, 101);
  assert.is(more[0]!.flags! & proposeStartsStream, 0);
  p.stop();
});

test('a redirect sends what it refused to the hinted leader, from the oldest unanswered, starting the stream there', async () => {
  const c = new FakeCluster();
  const p = new ClientPipeline(c);
  const a = p.submit(text.encode('a'), 5_000, null);
  const b = p.submit(text.encode('b'), 5_000, null);
  await tick();
  c.take();
  c.leaderId = 2;
  feed(p, 1, encodeControl(FrameKind.redirect, 1, 2, 0).slice());
  await tick();
  const sent = c.take();
  assert.is(sent.length, 1);
  assert.is(sent[0]!.to, 2);
  assert.equal(sent[0]!.commands, ['a', 'b']);
  assert.is(sent[0]!.firstSeq, 1);
  assert.is(sent[0]!.flags! & proposeStartsStream, proposeStartsStream);
  // A late answer from the old node is still true (it applied them) and settles them.
  feed(p, 1, results(0, 1, [[5, 'ra']]));
  feed(p, 2, results(0, 1, [[7, 'ra-again'], [8, 'rb']]));
  assert.is(untext.decode((await a).result), 'ra');
  assert.is((await b).index, 8);
  p.stop();
});

test('busy: the pipeline backs off and sends again; refused long enough, the write fails busy and certainly not applied', async () => {
  const c = new FakeCluster();
  const p = new ClientPipeline(c, { busyBackoffMs: 5, busyGiveUpMs: 60 });
  const w = p.submit(text.encode('w'), 5_000, null);
  await tick();
  c.take();
  feed(p, 1, encodeControl(FrameKind.busy, 1, 0, 0).slice());
  await sleep(30);
  const again = c.take();
  assert.ok(again.length >= 1, 'sent again after the pause');
  assert.equal(again[0]!.commands, ['w']);
  // Refused every time: after busyGiveUpMs it fails.
  const refuse = setInterval(() => feed(p, 1, encodeControl(FrameKind.busy, 1, 0, 0).slice()), 5);
  const err = await w.then(() => null, (e: Error) => e);
  clearInterval(refuse);
  assert.instance(err, BusyError);
  assert.ok((err as BusyError).definitelyNotApplied);
  assert.match(err!.message, /uncommitted/);
  // The next write takes its seq: it never reached any log.
  c.take();
  p.submit(text.encode('x'), 5_000, null).catch(() => undefined);
  await sleep(20);
  const next = c.take().filter((s) => s.commands?.includes('x'));
  assert.is(next[0]!.firstSeq, 1);
  p.stop();
});

test('silence: unanswered writes go again to the leader after resendMs, the stream started afresh', async () => {
  const c = new FakeCluster();
  const p = new ClientPipeline(c, { resendMs: 40 });
  const w = p.submit(text.encode('lost'), 5_000, null);
  await tick();
  assert.is(c.take().length, 1);
  await sleep(120);
  const again = c.take();
  assert.ok(again.length >= 1, 'sent again');
  assert.equal(again[0]!.commands, ['lost']);
  assert.is(again[0]!.firstSeq, 1);
  assert.is(again[0]!.flags! & proposeStartsStream, proposeStartsStream);
  feed(p, 1, results(0, 1, [[3, 'ok']]));
  assert.is((await w).index, 3);
  p.stop();
});

test('deadlines: never sent → no leader, certainly not applied; sent → outcome unknown, and it stays in the stream', async () => {
  const c = new FakeCluster();
  c.leaderId = null;
  const p = new ClientPipeline(c, { resendMs: 30 });
  const unsent = await p.submit(text.encode('u'), 50, null).then(() => null, (e: Error) => e);
  assert.instance(unsent, NoLeaderError);
  assert.ok((unsent as NoLeaderError).definitelyNotApplied);
  assert.is(c.take().length, 0);
  c.leaderId = 1;
  const sent = await p.submit(text.encode('s'), 50, null).then(() => null, (e: Error) => e);
  assert.instance(sent, DeadlineError);
  assert.not.ok((sent as DeadlineError).definitelyNotApplied);
  // A later write comes after it: the given-up write keeps its seq and is sent again with it.
  p.submit(text.encode('t'), 5_000, null).catch(() => undefined);
  await sleep(80);
  const frames = c.take();
  const last = frames[frames.length - 1]!;
  assert.is(last.firstSeq, 1);
  assert.equal(last.commands, ['s', 't']);
  p.stop();
});

test('a redirect that sends the stream back leaves its writes possibly applied; one for a frame not taken does not', async () => {
  const c = new FakeCluster();
  c.leaderId = null;
  const p = new ClientPipeline(c);
  c.leaderId = 1;
  const taken = p.submit(text.encode('t'), 60, null).then(() => null, (e: Error) => e);
  await tick();
  c.take();
  // Node 1 took it, then lost leadership: "go back" (not taken: false). No leader is known now.
  c.leaderId = null;
  feed(p, 1, encodeControl(FrameKind.redirect, 1, 0, 0, false).slice());
  const e1 = (await taken) as DeadlineError | NoLeaderError;
  assert.ok(e1 !== null);
  assert.not.ok(e1.definitelyNotApplied, 'it may be applied: the node had taken it');
  // A fresh stream (through node 2): node 1 is no leader and took nothing of the frame.
  c.leaderId = 1;
  const refused = p.submit(text.encode('r'), 60, 2).then(() => null, (e: Error) => e);
  await tick();
  c.take();
  c.leaderId = null;
  // Writes through node 2 are the first stream of their own: wire id 1.
  feed(p, 1, encodeControl(FrameKind.redirect, 1, 0, 1, true).slice());
  const e2 = (await refused) as NoLeaderError;
  assert.ok(e2 !== null);
  assert.ok(e2.definitelyNotApplied, 'refused whole by a node that is not the leader');
  p.stop();
});

test('a write through a node cut off from the leader waits on its own stream and fails as no quorum', async () => {
  const c = new FakeCluster();
  c.cut = [[3, 1]];
  const p = new ClientPipeline(c);
  const direct = p.submit(text.encode('d'), 5_000, null);
  const via = p.submit(text.encode('v'), 80, 3).then(() => null, (e: Error) => e);
  await tick();
  const sent = c.take();
  assert.is(sent.length, 1, 'only the direct write goes');
  assert.is(sent[0]!.stream, 0);
  feed(p, 1, results(0, 1, [[2, 'ok']]));
  assert.is((await direct).index, 2);
  const err = await via;
  assert.instance(err, NoQuorumError);
  assert.match(err!.message, /node 3/);
  // Healed: writes through node 3 go on its own stream (the first one named by a node: wire id 1).
  c.cut = [];
  p.submit(text.encode('v2'), 5_000, 3).catch(() => undefined);
  await tick();
  const s3 = c.take();
  assert.is(s3[0]!.stream, 1);
  assert.is(s3[0]!.to, 1);
  p.stop();
});

test('reads of one turn go as one batch per node and mode; answers, redirects and refusals', async () => {
  const c = new FakeCluster();
  const p = new ClientPipeline(c);
  const reads = Array.from({ length: 20 }, (_, i) => p.read({ key: `k${i}`, app: undefined }, 'index', 5_000, null));
  await tick();
  const sent = c.take();
  assert.is(sent.length, 1);
  assert.is(sent[0]!.kind, FrameKind.reads);
  assert.is(sent[0]!.keys!.length, 20);
  const batch = sent[0]!.batch!;
  // Answered in two frames (a large batch is cut), values by position.
  const values = (from: number, n: number) => Array.from({ length: n }, (_, i) => (from + i) % 2 === 0 ? text.encode(`v${from + i}`) : null);
  feed(p, 1, encodeReadAnswers({ batch, status: ReadStatus.ok, index: 9, applied: 9, commit: 9, leader: 0, first: 0, values: values(0, 12) }));
  feed(p, 1, encodeReadAnswers({ batch, status: ReadStatus.ok, index: 9, applied: 9, commit: 9, leader: 0, first: 12, values: values(12, 8) }));
  const got = await Promise.all(reads);
  assert.equal(got.map((g) => (g.value === null ? null : untext.decode(g.value))), Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? `v${i}` : null)));
  assert.is(got[0]!.index, 9);
  // Redirect: the batch goes to the hinted leader.
  const r = p.read({ key: 'x', app: undefined }, 'index', 5_000, null);
  await tick();
  const first = c.take()[0]!;
  feed(p, 1, encodeReadAnswers({ batch: first.batch!, status: ReadStatus.redirect, index: 0, applied: 0, commit: 0, leader: 2, first: 0, values: [] }));
  const second = c.take()[0]!;
  assert.is(second.to, 2);
  feed(p, 2, encodeReadAnswers({ batch: second.batch!, status: ReadStatus.ok, index: 4, applied: 4, commit: 4, leader: 0, first: 0, values: [text.encode('x!')] }));
  assert.is((await r).node, 2);
  // Refused: a witness serves no reads.
  const w = p.read({ key: 'y', app: undefined }, 'stale', 5_000, 3).then(() => null, (e: Error) => e);
  await tick();
  const third = c.take()[0]!;
  assert.is(third.to, 3);
  feed(p, 3, refusal(third.batch!, 'node 3 is a witness'));
  const err = await w;
  assert.instance(err, NodeStateError);
  assert.match(err!.message, /witness/);
  p.stop();
});

test('too much waiting: the pipeline answers busy at once rather than queue without bound', async () => {
  const c = new FakeCluster();
  c.leaderId = null;
  const p = new ClientPipeline(c, { pendingMax: 3 });
  const waiting = [0, 1, 2].map((i) => p.submit(text.encode(`${i}`), 5_000, null).catch(() => undefined));
  const err = await p.submit(text.encode('x'), 5_000, null).then(() => null, (e: Error) => e);
  assert.instance(err, BusyError);
  p.stop();
  await Promise.all(waiting);
});

test('a stream no node answers keeps its given-up writes, but at most pendingMax of them', async () => {
  const c = new FakeCluster();
  const p = new ClientPipeline(c, { pendingMax: 3 });
  // Sent and never answered: given up at their deadline, they stay in the stream.
  for (let i = 0; i < 3; i++) assert.instance(await p.submit(text.encode(`${i}`), 20, null).then(() => null, (e: Error) => e), DeadlineError);
  assert.is(p.pending, 0);
  const err = await p.submit(text.encode('more'), 5_000, null).then(() => null, (e: Error) => e);
  assert.instance(err, BusyError);
  assert.match(err!.message, /3 writes await an answer/);
  // Answered at last: the stream takes writes again.
  feed(p, 1, results(0, 1, [[1, 'a'], [2, 'b'], [3, 'c']]));
  const again = p.submit(text.encode('again'), 5_000, null);
  await tick();
  const sent = c.take().filter((x) => x.commands?.includes('again'));
  assert.is(sent[sent.length - 1]!.firstSeq, 4);
  feed(p, 1, results(0, 4, [[4, 'd']]));
  assert.is((await again).index, 4);
  p.stop();
});

test.run();
