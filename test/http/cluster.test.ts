import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { httpApiSettings } from '../../apps/http/settings.ts';
import { json, post, use } from './harness.ts';

test('GET /cluster reports the backend status', () =>
  use(async ({ url, backend }) => {
    const r = await json(`${url}/cluster`);
    assert.is(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    // The backend's status, each node with the `status` the API derives from `up` for backends without pause.
    const expected = JSON.parse(JSON.stringify(backend.status())) as { nodes: Record<string, unknown>[] };
    for (const n of expected.nodes) n.status = 'up';
    assert.equal(r.body, expected);
    assert.is(r.body.leader, 1);
    assert.is((r.body.nodes as unknown[]).length, 3);
  }));

test('crash and restart a node; wrong state is 409, unknown node 404, bad id 400', () =>
  use(async ({ url, backend }) => {
    let r = await post(`${url}/cluster/nodes/2/crash`, '');
    assert.is(r.status, 200);
    assert.equal(r.body, { ok: true, node: 2, action: 'crash' });
    assert.is(backend.up.get(2), false);
    const status = await json(`${url}/cluster`);
    assert.is((status.body.nodes as Array<{ id: number; up: boolean }>).find((n) => n.id === 2)!.up, false);

    r = await post(`${url}/cluster/nodes/2/crash`, '');
    assert.is(r.status, 409);
    assert.equal(r.body, { error: 'node 2 is already down', code: 'node-state' });

    r = await post(`${url}/cluster/nodes/2/restart`, '');
    assert.is(r.status, 200);
    assert.is(backend.up.get(2), true);

    r = await post(`${url}/cluster/nodes/9/crash`, '');
    assert.is(r.status, 404);
    assert.equal(r.body, { error: 'there is no node 9', code: 'unknown-node' });
    r = await post(`${url}/cluster/nodes/9/restart`, '');
    assert.is(r.status, 404);

    r = await post(`${url}/cluster/nodes/abc/crash`, '');
    assert.is(r.status, 400);
    assert.is(r.body.code, 'bad-node-id');
    assert.match(r.body.error as string, /positive integers, got "abc"/);
  }));

test('partition validates groups and normalises the rest into one group; heal clears it', () =>
  use(
    async ({ url, backend }) => {
      let r = await post(`${url}/cluster/partition`, { groups: [[1, 2, 3], [4, 5]] });
      assert.is(r.status, 200);
      assert.equal(backend.groups, [[1, 2, 3], [4, 5]]);

      r = await post(`${url}/cluster/partition`, { groups: [[1]] });
      assert.is(r.status, 200);
      assert.equal(r.body.groups, [[1], [2, 3, 4, 5]]);
      assert.equal(backend.groups, [[1], [2, 3, 4, 5]]);

      r = await post(`${url}/cluster/heal`, '');
      assert.is(r.status, 200);
      assert.is(backend.groups, null);

      const bad: Array<[unknown, RegExp]> = [
        [{ groups: [[1, 9]] }, /there is no node 9/],
        [{ groups: [[1, 2], [2, 3]] }, /node 2 appears in more than one group/],
        [{ groups: [[1, 1]] }, /node 1 appears in more than one group/],
        [{ groups: [] }, /non-empty array/],
        [{ groups: [[1], []] }, /every group must be a non-empty array/],
        [{ groups: [['1']] }, /node ids are non-negative integers, got "1"/],
        [{ groups: 'all' }, /non-empty array/],
        [{}, /expected a JSON object/],
        [[1, 2], /expected a JSON object/],
      ];
      for (const [body, message] of bad) {
        r = await post(`${url}/cluster/partition`, body);
        assert.is(r.status, 400, JSON.stringify(body));
        assert.is(r.body.code, 'bad-partition', JSON.stringify(body));
        assert.match(r.body.error as string, message);
      }
      r = await post(`${url}/cluster/partition`, '{"groups": [[1,2]');
      assert.is(r.status, 400);
      assert.is(r.body.code, 'bad-json');
      assert.match(r.body.error as string, /not valid JSON/);
      assert.is(backend.groups, null, 'no rejected partition reached the backend');
    },
    {},
    { nodeIds: [1, 2, 3, 4, 5] },
  ));

test('control bodies are limited', () =>
  use(
    async ({ url, backend }) => {
      const r = await post(`${url}/cluster/partition`, { groups: [[1]], padding: 'x'.repeat(200) });
      assert.is(r.status, 413);
      assert.is(r.body.code, 'body-too-large');
      assert.match(r.body.error as string, /the limit is 100 bytes/);
      assert.is(backend.groups, null);
    },
    { controlBodyBytesMax: 100 },
  ));

test('unknown routes are 404 and wrong methods 405 with Allow', () =>
  use(async ({ url }) => {
    let r = await json(`${url}/nope`);
    assert.is(r.status, 404);
    assert.equal(r.body, { error: 'no such endpoint: GET /nope', code: 'not-found' });
    r = await json(`${url}/cluster/nodes/1/explode`, { method: 'POST' });
    assert.is(r.status, 404);

    r = await json(`${url}/cluster`, { method: 'DELETE' });
    assert.is(r.status, 405);
    assert.is(r.body.code, 'method-not-allowed');
    assert.is(r.headers.get('allow'), 'GET, HEAD');
    r = await json(`${url}/kv/k`, { method: 'POST' });
    assert.is(r.status, 405);
    assert.is(r.headers.get('allow'), 'GET, PUT, DELETE, HEAD');
    assert.match(r.body.error as string, /POST is not supported on \/kv\/k; use GET, PUT, DELETE, HEAD/);
    r = await json(`${url}/cluster/nodes/1/crash`);
    assert.is(r.status, 405);
    assert.is(r.headers.get('allow'), 'POST');
  }));

test('settings are checked up front and the wrong one is named', () => {
  assert.throws(() => httpApiSettings({ requestDeadlineMs: 0 }), /requestDeadlineMs must be a positive integer, got 0/);
  assert.throws(() => httpApiSettings({ port: 70000 }), /port must be an integer from 0 to 65535/);
  assert.throws(() => httpApiSettings({ valueBytesMax: 1.5 }), /valueBytesMax/);
  // The cas body limit follows the value limit: two base64 values plus room.
  assert.ok(httpApiSettings({ valueBytesMax: 3000 }).casBodyBytesMax >= 8000);
});

test.run();
