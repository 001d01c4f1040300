// The material's pictures as one-click runs on the real cluster: each step calls the public API,
// then waits for the cluster to show what the narration says (or stops, saying what did not
// happen in time). Every scenario leaves the network healed and its crashed nodes restarted.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function tools(ctx) {
  const nodes = () => ctx.nodesOf(ctx.live.update);
  const node = (id) => nodes().find((n) => n.id === id);
  const leader = () => {
    const id = ctx.live.update?.status.leader ?? null;
    const n = id === null ? undefined : node(id);
    return n && n.status === 'up' ? n : null;
  };
  async function waitFor(what, check, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
      await sleep(100);
    }
  }
  /** Restarts those of `ids` that are down and waits until they show up; false if one could not be. */
  async function restartDown(ids) {
    let all = true;
    for (const id of ids) {
      if (node(id)?.status !== 'down') continue;
      try {
        await ctx.api('POST', `/cluster/nodes/${id}/restart`);
        await waitFor(`node ${id} coming back`, () => node(id)?.status === 'up');
      } catch (err) {
        all = false;
        await ctx.step(`Node ${id} stays down: ${err.message}`);
      }
    }
    return all;
  }
  return { nodes, node, leader, waitFor, restartDown };
}

/** Raft's word for a leader's epoch, or Paxos's. */
const epoch = (ctx) => (ctx.protocol === 'multipaxos' ? 'ballot' : 'term');

async function leaderCrash(ctx) {
  const t = tools(ctx);
  const old = await t.waitFor('a leader', t.leader);
  await ctx.step(`Node ${old.id} leads ${epoch(ctx)} ${old.epoch ?? old.term}. Crashing it: its followers stop hearing heartbeats.`);
  await ctx.api('POST', `/cluster/nodes/${old.id}/crash`);
  await ctx.step('Each follower waits out its own randomized election timeout; the first to time out asks the others for votes.');
  const next = await t.waitFor('a new leader', () => { const l = t.leader(); return l && l.id !== old.id ? l : null; });
  await ctx.step(ctx.protocol === 'multipaxos' ? `Node ${next.id} won phase 1 with a majority of promises and leads ballot ${next.epoch}.` : `Node ${next.id} won a majority of votes and leads term ${next.term}.`);
  const put = await ctx.api('PUT', '/kv/scenario-election', `written under node ${next.id}`);
  await ctx.step(`The new leader commits writes: scenario-election written at index ${put.json.index}.`);
  await ctx.step(`Restarting node ${old.id}: it comes back as a follower, hears the higher ${epoch(ctx)} and catches up.`);
  if (await t.restartDown([old.id])) {
    await t.waitFor(`node ${old.id} catching up`, () => { const n = t.node(old.id); return n && n.status === 'up' && n.role === 'follower' && n.commitIndex >= put.json.index; });
    await ctx.step(`Node ${old.id} follows node ${t.leader()?.id ?? next.id} and holds every committed entry.`);
  }
}

/** The leader and fewer than half the nodes on one side; the rest, a majority, on the other. */
async function minorityPartition(ctx) {
  const t = tools(ctx);
  const old = await t.waitFor('a leader', t.leader);
  const all = t.nodes().map((n) => n.id);
  const minoritySize = Math.floor((all.length - 1) / 2);
  if (minoritySize < 1) throw new Error('this needs at least 3 nodes');
  const minority = [old.id, ...all.filter((id) => id !== old.id).slice(0, minoritySize - 1)];
  const majority = all.filter((id) => !minority.includes(id));
  await ctx.step(`Splitting ${all.length} nodes ${majority.length}/${minority.length}: the leader (node ${old.id}) ends up in the minority {${minority.join(',')}}.`);
  await ctx.api('POST', '/cluster/partition', { groups: [majority, minority] });
  await ctx.step(`The majority {${majority.join(',')}} stops hearing node ${old.id} and elects a leader of its own, with a higher ${epoch(ctx)}.`);
  const next = await t.waitFor('a leader in the majority', () => { const l = t.nodes().find((n) => majority.includes(n.id) && n.role === 'leader' && n.status === 'up'); return l ?? null; });
  const stuckAt = t.node(old.id).commitIndex;
  const put = await ctx.api('PUT', '/kv/scenario-partition', 'majority side');
  await t.waitFor('the majority committing', () => t.node(next.id).commitIndex >= put.json.index);
  await ctx.step(`Node ${next.id} commits (index ${put.json.index}); node ${old.id}, alone with a minority, cannot: its commit index stays at ${stuckAt}.`);
  await sleep(1_500);
  const still = t.node(old.id).commitIndex;
  if (still > stuckAt) throw new Error(`node ${old.id} committed past ${stuckAt} without a majority`);
  await ctx.step(`Healing: the old leader hears the higher ${epoch(ctx)}, steps down and takes the new leader's log.`);
  await ctx.api('POST', '/cluster/heal');
  await t.waitFor(`node ${old.id} rejoining`, () => { const n = t.node(old.id); return n && n.role === 'follower' && n.commitIndex >= put.json.index; });
  await ctx.step(`One cluster again: node ${old.id} follows node ${t.leader()?.id ?? next.id} and holds the majority's writes.`);
}

/** The leader crashed and the rest split in halves, neither a majority: nobody can win a vote. */
async function splitVote(ctx) {
  const t = tools(ctx);
  const old = await t.waitFor('a leader', t.leader);
  const all = t.nodes().map((n) => n.id);
  const rest = all.filter((id) => id !== old.id);
  const half = Math.floor(rest.length / 2);
  const groups = [rest.slice(0, half), rest.slice(half)];
  const majority = Math.floor(all.length / 2) + 1;
  if (groups.some((g) => g.length === 0 || g.length >= majority)) throw new Error(`a split vote needs 3 or more nodes with no majority on either side; this cluster has ${all.length}`);
  await ctx.step(`Crashing the leader (node ${old.id}) and splitting the others {${groups[0].join(',')}} | {${groups[1].join(',')}}: a leader needs ${majority} votes of ${all.length}.`);
  await ctx.api('POST', '/cluster/partition', { groups: [...groups, [old.id]] });
  await ctx.api('POST', `/cluster/nodes/${old.id}/crash`);
  await ctx.step(`Candidates time out and ask for votes, but each side can give at most ${Math.max(...groups.map((g) => g.length))}: the votes are split and no one wins. (With PreVote a candidate first asks whether it could win, so the terms do not climb.)`);
  const termBefore = Math.max(...rest.map((id) => t.node(id).term));
  const started = Date.now();
  await t.waitFor('3 s without a leader', () => {
    if (t.nodes().some((n) => rest.includes(n.id) && n.role === 'leader' && n.status === 'up')) throw new Error('a node won with a minority of votes');
    return Date.now() - started > 3_000;
  }, 5_000);
  const termAfter = Math.max(...rest.map((id) => t.node(id).term));
  await ctx.step(`3 s of elections and no leader; the highest term went from ${termBefore} to ${termAfter}.`);
  await ctx.step('Healing the split: now one candidate can gather a majority, and wins.');
  await ctx.api('POST', '/cluster/heal');
  const next = await t.waitFor('a leader after healing', () => { const l = t.leader(); return l && rest.includes(l.id) ? l : null; });
  await ctx.step(`Node ${next.id} leads term ${next.term}. Restarting node ${old.id}.`);
  await t.restartDown([old.id]);
}

/** A follower cut off while the leader writes, then healed: the leader repairs its log. */
async function logRepair(ctx) {
  const t = tools(ctx);
  const l = await t.waitFor('a leader', t.leader);
  const follower = t.nodes().find((n) => n.id !== l.id && n.status === 'up');
  if (!follower) throw new Error('this needs a follower that is up');
  const others = t.nodes().map((n) => n.id).filter((id) => id !== follower.id);
  await ctx.step(`Cutting node ${follower.id} off from the others; node ${l.id} goes on leading.`);
  await ctx.api('POST', '/cluster/partition', { groups: [others, [follower.id]] });
  await sleep(300);
  let last = 0;
  for (let i = 0; i < 20; i++) last = (await ctx.api('PUT', `/kv/scenario-repair-${i}`, `entry ${i}`)).json.index;
  const behind = t.node(follower.id).lastIndex;
  await ctx.step(`20 writes committed up to index ${last}; node ${follower.id} missed them (its log ends at ${behind}).`);
  await ctx.step(
    ctx.protocol === 'multipaxos'
      ? `Healing. Node ${follower.id} learns of slots chosen past its own and asks for the values it lacks (catch-up); the leader sends them.`
      : `Healing. The leader's next append to node ${follower.id} does not match its log: the leader backs off (probe) until they agree, then sends what is missing (replicate).`,
  );
  await ctx.api('POST', '/cluster/heal');
  await t.waitFor(`node ${follower.id} catching up`, () => { const n = t.node(follower.id); return n && n.lastIndex >= last && n.commitIndex >= last; });
  await ctx.step(`Node ${follower.id}'s log now reaches index ${t.node(follower.id).lastIndex}: repaired from the leader's.`);
}

/** Multi-Paxos: a value chosen under one leader's ballot is kept by the next ballot's leader. */
async function chosenSurvives(ctx) {
  const t = tools(ctx);
  const l = await t.waitFor('a leader', t.leader);
  const ballot = l.term;
  const put = await ctx.api('PUT', '/kv/scenario-chosen', `chosen under ballot ${l.epoch}`);
  await ctx.step(`Node ${l.id} leads with ballot ${l.epoch}; the value for slot ${put.json.index} is chosen: a majority accepted it.`);
  await ctx.step(`Crashing node ${l.id}. The next leader must run phase 1 with a higher ballot; the promises it gathers report what each acceptor accepted.`);
  await ctx.api('POST', `/cluster/nodes/${l.id}/crash`);
  const next = await t.waitFor('a leader with a higher ballot', () => { const n = t.leader(); return n && n.id !== l.id && n.term > ballot ? n : null; });
  await ctx.step(`Node ${next.id} leads with ballot ${next.epoch}. Any majority it heard from includes an acceptor of slot ${put.json.index}, so it must propose that same value again.`);
  const got = await ctx.api('GET', '/kv/scenario-chosen');
  if (got.text !== `chosen under ballot ${l.epoch}`) throw new Error(`read ${JSON.stringify(got.text)}, not the chosen value`);
  await ctx.step(`Read back under ballot ${next.epoch}: "${got.text}" — a chosen value survives every later ballot.`);
  await t.restartDown([l.id]);
}

export const scenarios = [
  { name: 'leader-crash', title: 'Leader crash → election', summary: 'crash the leader and watch a new one elected', protocols: ['raft', 'multipaxos'], run: leaderCrash },
  { name: 'minority-partition', title: 'Majority / minority split', summary: 'the minority cannot commit; heal brings it back', protocols: ['raft', 'multipaxos'], run: minorityPartition },
  { name: 'split-vote', title: 'Split vote', summary: 'no side has a majority: nobody wins until healed', protocols: ['raft'], run: splitVote },
  { name: 'log-repair', title: 'Log repair', summary: 'a follower misses entries and the leader repairs its log', protocols: ['raft', 'multipaxos'], run: logRepair },
  { name: 'chosen-survives', title: 'Chosen value survives', summary: 'a value chosen under one ballot is kept by the next', protocols: ['multipaxos'], run: chosenSurvives },
];

export async function runScenario(s, ctx) {
  try {
    await s.run(ctx);
  } finally {
    // Whatever happened, leave the network whole.
    await ctx.api('POST', '/cluster/heal').catch(() => {});
  }
}
