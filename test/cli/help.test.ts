// Every `--help` of the concur CLI, read in-process: no defaults printed as JSON arrays, no help
// that sends you back to itself, the simulator's mutations all listed, the election range
// explained, and every command that talks to a cluster taking --token-file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Command } from 'commander';
import { buildProgram } from '../../apps/cli/main.ts';
import { coreMutationNames, mutationsHelp, replicaMutationNames, simProtocolNames } from '../../apps/cli/commands/sim.ts';
import { simProtocols } from '../../protocols/sim/index.ts';
import { replicaMutations } from '../../apps/sim/index.ts';

/** Every command with its full name and its help text, as `concur X --help` prints it. */
async function everyHelp(): Promise<{ name: string; cmd: Command; help: string }[]> {
  const out: { name: string; cmd: Command; help: string }[] = [];
  const walk = (cmd: Command, prefix: string) => {
    for (const sub of cmd.commands) {
      const name = `${prefix} ${sub.name()}`.trim();
      // Text added with addHelpText is printed around helpInformation(); collect it too.
      let extra = '';
      sub.configureOutput({ writeOut: (s) => (extra += s), writeErr: (s) => (extra += s) });
      sub.outputHelp();
      out.push({ name, cmd: sub, help: extra });
      walk(sub, name);
    }
  };
  walk(await buildProgram(), '');
  return out;
}

test('no --help prints a default as a JSON array or object', async () => {
  const all = (await everyHelp());
  assert.ok(all.length > 30, `found ${all.length} commands`);
  for (const { name, help } of all) {
    assert.not.match(help, /\(default: \[/, `concur ${name} --help prints a JSON array default`);
    assert.not.match(help, /\(default: \{/, `concur ${name} --help prints a JSON object default`);
  }
  const raft = all.find((c) => c.name === 'bench raft')!.help;
  assert.match(raft, /\(default: 1,8,64,512\)/);
  assert.match(all.find((c) => c.name === 'start')!.help, /\(default: 150-300\)/);
  assert.match(all.find((c) => c.name === 'start')!.help, /\(default: kv,lock\)/);
  assert.match(all.find((c) => c.name === 'chaos')!.help, /\(default: partition,crash,loss,delay,pause\)/);
});

test('bench --help lists the benchmarks instead of pointing at itself', async () => {
  const program = (await buildProgram());
  const top = program.helpInformation();
  assert.not.match(top, /see `concur bench --help`/);
  const bench = (await everyHelp()).find((c) => c.name === 'bench')!.help;
  for (const b of ['transport', 'kv', 'reads', 'locks', 'soak', 'restart', 'replication', 'witness', 'raft']) assert.match(bench, new RegExp(`^  ${b} `, 'm'));
  assert.match(bench, /README, "Benchmarks"/);
});

test('sim --help lists every mutation of every protocol, --replica included', async () => {
  const help = (await everyHelp()).find((c) => c.name === 'sim')!.help;
  assert.is(help.includes(mutationsHelp()), true);
  for (const [name, make] of Object.entries(simProtocols)) {
    assert.match(help, new RegExp(`--protocol ${name}:`));
    for (const m of make().mutations) assert.match(help, new RegExp(`\\b${m}\\b`), `${name} mutation ${m}`);
  }
  // The list kept in the CLI (so --help does not load the replica simulator) is the real one.
  assert.equal([...replicaMutationNames].sort(), Object.keys(replicaMutations).sort());
  assert.equal([...simProtocolNames].sort(), Object.keys(simProtocols).sort());
  for (const name of simProtocolNames) assert.equal([...coreMutationNames[name]].sort(), [...simProtocols[name]!().mutations].sort(), `${name}'s mutations`);
});

test('start --help says why --election-ms must be MIN-2xMIN, and what --token-file, --insecure and --no-fault-api do', async () => {
  const help = (await everyHelp()).find((c) => c.name === 'start')!.help.replace(/\s+/g, ' ');
  assert.match(help, /MAX must be 2×MIN, since each node draws its timeout from \[MIN, 2×MIN\)/);
  assert.match(help, /--token-file <file> require "Authorization: Bearer <token>" on every request/);
  assert.match(help, /--insecure allow a --host other machines can reach without --token-file/);
  assert.match(help, /--no-fault-api switch off crash, restart, pause, resume, partition, isolate, cut, faults and heal/);
});

test('every command that talks to a cluster takes --url and --token-file (env CONCUR_TOKEN_FILE)', async () => {
  const clients = (await everyHelp()).filter((c) => c.cmd.options.some((o) => o.long === '--url'));
  const names = clients.map((c) => c.name);
  for (const n of ['kv get', 'kv put', 'kv list', 'kv del', 'kv cas', 'member list', 'transfer', 'lock acquire', 'lock run', 'cluster status', 'cluster crash', 'cluster faults', 'cluster heal']) assert.ok(names.includes(n), `${n} is an API client`);
  for (const c of clients) {
    const opt = c.cmd.options.find((o) => o.long === '--token-file');
    assert.ok(opt, `concur ${c.name} takes --token-file`);
    assert.is(opt!.envVar, 'CONCUR_TOKEN_FILE');
  }
});

test('the description says Raft and Paxos, and Paxos exists', async () => {
  assert.match((await buildProgram()).description(), /Raft and Paxos/);
  assert.ok(Object.keys(simProtocols).includes('multipaxos'));
});

test.run();
