// The dashboard in a real browser (Debian's chromium driven by playwright-core) against a real
// 5-node `concur start`: every check goes through what a person sees and clicks. Screenshots of
// each step land in test-artifacts/dashboard/ (not committed). Without chromium these tests fail:
// `.ci/run` installs it.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startCli, waitForLeader, type StartedCli } from '../support/cli-process.ts';

// The page's own global, inside page.waitForFunction callbacks (they run in the browser).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const document: any;

const artifacts = join(fileURLToPath(new URL('../..', import.meta.url)), 'test-artifacts', 'dashboard');
mkdirSync(artifacts, { recursive: true });

let cli: StartedCli;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

const leaderOf = () => page.getAttribute('#app', 'data-leader');
const roleOf = (id: number) => page.getAttribute(`svg .node[data-node-id="${id}"]`, 'data-role');
const commitOf = async (id: number) => Number(await page.getAttribute(`[data-log-node="${id}"] [data-commit]`, 'data-commit'));

test.before(async () => {
  cli = await startCli(['--nodes', '5']);
  await waitForLeader(cli.url, 15_000);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
});

test.after(async () => {
  await browser?.close();
  cli?.child.kill('SIGINT');
  await cli?.exited;
});

test('the page loads without console errors and shows 5 nodes and one leader within 5 s', async () => {
  await page.goto(`${cli.url}/`);
  // The root's data-leader is set after the render that draws the nodes (and from the cluster's
  // view, not a node's): wait until it names the one node drawn as leader, not merely until it
  // is not empty (an attribute not set yet is null, which is not '').
  await page.waitForFunction(() => {
    const leaders = document.querySelectorAll('svg .node[data-role="leader"]');
    const named = document.querySelector('#app')!.getAttribute('data-leader');
    return leaders.length === 1 && named !== null && named !== '' && leaders[0].getAttribute('data-node-id') === named;
  }, null, { timeout: 5_000 });
  assert.is(await page.locator('svg .node[data-node-id]').count(), 5);
  const leader = Number(await leaderOf());
  assert.is(await roleOf(leader), 'leader');
  await shot('1-loaded');
  assert.equal(consoleErrors, []);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 1280, `the page fits 1280 px wide (it is ${width})`);
});

test('crash on the leader: another leader within 3 s, the crashed node shown down; restart brings it back', async () => {
  const old = Number(await leaderOf());
  await page.click(`button[data-action="crash"][data-node="${old}"]`);
  await page.waitForFunction((o) => {
    const l = document.querySelector('#app')!.getAttribute('data-leader');
    return l !== '' && l !== String(o) && document.querySelector(`svg .node[data-node-id="${o}"]`)!.getAttribute('data-role') === 'down';
  }, old, { timeout: 3_000 });
  assert.is(await roleOf(old), 'down');
  await shot('2-leader-crashed');
  await page.click(`button[data-action="restart"][data-node="${old}"]`);
  await page.waitForFunction((o) => document.querySelector(`svg .node[data-node-id="${o}"]`)!.getAttribute('data-role') === 'follower', old, { timeout: 10_000 });
});

test('a 3/2 partition made in the UI: the minority cannot commit while the majority goes on; heal joins them', async () => {
  try {
    await partitionAndHeal();
  } finally {
    // A failure must not leave the next test a split cluster.
    await fetch(`${cli.url}/cluster/heal`, { method: 'POST' });
  }
});

async function partitionAndHeal(): Promise<void> {
  const leader = Number(await leaderOf());
  const ids = [1, 2, 3, 4, 5];
  const minority = [leader, ids.find((i) => i !== leader)!];
  const majority = ids.filter((i) => !minority.includes(i));
  for (const id of minority) await page.selectOption(`select[data-group-node="${id}"]`, 'B');
  await page.click('button[data-action="partition"]');
  // 3 × 2 links cross the split.
  await page.waitForFunction(() => document.querySelectorAll('line.link.cut').length === 6, null, { timeout: 5_000 });
  // The majority elects its own leader.
  await page.waitForFunction((maj) => maj.includes(Number(document.querySelector('#app')!.getAttribute('data-leader'))), majority, { timeout: 10_000 });
  const stuck = await Promise.all(minority.map(commitOf));
  await page.fill('input[data-control="key"]', 'partitioned');
  await page.fill('input[data-control="value"]', 'majority');
  await page.click('button[data-action="put"]');
  await page.waitForFunction(() => /at index \d+/.test(document.querySelector('[data-message]')!.textContent ?? ''), null, { timeout: 10_000 });
  const index = Number(/at index (\d+)/.exec((await page.textContent('[data-message]'))!)![1]);
  await page.waitForFunction(([maj, i]) => (maj as number[]).every((id) => Number(document.querySelector(`[data-log-node="${id}"] [data-commit]`)!.getAttribute('data-commit')) >= (i as number)), [majority, index], { timeout: 5_000 });
  await page.waitForTimeout(1_000);
  const after = await Promise.all(minority.map(commitOf));
  for (let k = 0; k < minority.length; k++) assert.ok(after[k]! < index, `minority node ${minority[k]} shows commit ${after[k]} (was ${stuck[k]}), at or past the majority's write at ${index}`);
  await shot('3-partitioned');
  await page.click('button[data-action="heal"]');
  await page.waitForFunction(([all, i]) => (all as number[]).every((id) => Number(document.querySelector(`[data-log-node="${id}"] [data-commit]`)!.getAttribute('data-commit')) >= (i as number)), [ids, index], { timeout: 10_000 });
  assert.is(await page.locator('line.link.cut').count(), 0);
  await shot('4-healed');
}

test('the leader-crash scenario runs to its end, narrated', async () => {
  await page.click('button[data-action="scenario"][data-scenario-name="leader-crash"]');
  await page.waitForFunction(() => document.querySelector('[data-scenario-state]')!.getAttribute('data-scenario-state') !== 'running', null, { timeout: 40_000 });
  await shot('5-scenario');
  const state = await page.getAttribute('[data-scenario-state]', 'data-scenario-state');
  const narration = await page.textContent('.narration');
  assert.is(state, 'done', `the scenario ended ${state}: ${narration}`);
  assert.match(narration!, /won a majority of votes/);
  assert.equal(consoleErrors, []);
});

test.run();
