// Pins the read path of `GET /kv/:key` without `?read=`: the linearizable `index` mode, asked of
// the backend as such, and the answer's headers carrying exactly what the backend returned.
// A backend that records each read stands in for the cluster; it must never answer from the log.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LocalReadMode, LocalReadResult } from '../../apps/http/backend.ts';
import { startHttpApi } from '../../apps/http/server.ts';
import { LocalBackend } from '../support/local-backend.ts';
import { json } from './harness.ts';

interface ReadCall {
  key: string;
  mode: LocalReadMode;
  via: number | undefined;
}

/** A LocalBackend whose reads are recorded and answered with distinctive positions. */
class RecordingBackend extends LocalBackend {
  readonly reads: ReadCall[] = [];
  answer: Omit<LocalReadResult, 'value'> = { index: 41, node: 2, applied: 43, commit: 42 };

  override async read(key: string, mode: LocalReadMode, _timeoutMs: number, opts: { via?: number } = {}): Promise<LocalReadResult> {
    this.reads.push({ key, mode, via: opts.via });
    return { ...this.answer, value: this.sm.readLocal(key) ?? null };
  }
}

async function withApi(fn: (url: string, backend: RecordingBackend) => Promise<void>): Promise<void> {
  const backend = new RecordingBackend();
  const api = await startHttpApi(backend, { host: '127.0.0.1', port: 0 });
  try {
    await fn(api.url, backend);
  } finally {
    await api.close();
  }
}

test('a GET without ?read= reaches the backend as an index read, and its headers report what the backend returned', () =>
  withApi(async (url, backend) => {
    assert.is((await json(`${url}/kv/colour`, { method: 'PUT', body: 'blue' })).status, 200);
    const submittedBefore = backend.submitted.length;

    const got = await fetch(`${url}/kv/colour`);
    assert.is(got.status, 200);
    assert.is(await got.text(), 'blue');
    assert.equal(backend.reads, [{ key: 'colour', mode: 'index', via: undefined }]);
    assert.is(backend.submitted.length, submittedBefore, 'the default read did not go through the log');
    assert.is(got.headers.get('x-concur-index'), '41');
    assert.is(got.headers.get('x-concur-node'), '2');
    assert.is(got.headers.get('x-concur-applied-index'), '43');
    assert.is(got.headers.get('x-concur-commit-index'), '42');

    // A missing key is the same read, and the 404 carries the same positions.
    backend.answer = { index: 7, node: 3, applied: 9, commit: 8 };
    const missing = await json(`${url}/kv/absent`);
    assert.is(missing.status, 404);
    assert.is(missing.body.code, 'key-not-found');
    assert.equal(backend.reads.at(-1), { key: 'absent', mode: 'index', via: undefined });
    assert.is(missing.headers.get('x-concur-index'), '7');
    assert.is(missing.headers.get('x-concur-node'), '3');
    assert.is(missing.headers.get('x-concur-applied-index'), '9');
    assert.is(missing.headers.get('x-concur-commit-index'), '8');
  }));

test('a named mode reaches the backend unchanged (the recording is not blind to the mode)', () =>
  withApi(async (url, backend) => {
    // node= names the serving node only where one is chosen (follower, stale); elsewhere it is refused.
    for (const mode of ['lease', 'follower', 'stale', 'index'] as const) {
      const named = mode === 'follower' || mode === 'stale';
      assert.is((await fetch(`${url}/kv/k?read=${mode}${named ? '&node=3' : ''}`)).status, 404);
      assert.equal(backend.reads.at(-1), { key: 'k', mode, via: named ? 3 : undefined });
    }
    assert.is(backend.reads.length, 4);
  }));

test.run();
