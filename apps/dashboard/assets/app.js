// The dashboard: a live picture of the real cluster from /dashboard/feed (server-sent events,
// at most ~10 updates a second), and controls that call the public HTTP API, nothing private.
// Stable hooks for tests and automation: nodes carry data-node-id / data-role / data-status,
// controls data-action, the root data-leader.
import { Component, h, render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import uPlot from 'uplot';
import { scenarios, runScenario } from './scenarios.js';

// ---- the API ---------------------------------------------------------------------------------

export async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['content-type'] = typeof body === 'string' ? 'application/octet-stream' : 'application/json';
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* a value, not JSON */ }
  if (!res.ok) throw new Error(json?.error ?? `${res.status} ${text}`);
  return { status: res.status, json, text, headers: res.headers };
}

// ---- the feed --------------------------------------------------------------------------------

/** The latest cluster state, and listeners (the scenario player waits on it too). */
export const live = { update: null, hello: null, seconds: [], timeline: [], streams: new Map(), listeners: new Set() };

/**
 * Links busier than the feed's streamPerSecMin (messages a second, both ways) are drawn as a
 * steady stream, not as moving dots: a loaded cluster's replication is a thick blue link with its
 * rate, and the page then animates nothing, so watching costs the cluster little. Sparse messages
 * (heartbeats, votes, a demo's few writes) still travel as dots.
 */
/** Per link (lower id first), messages a second by type, for the links above streamPerSecMin. */
function streamsOf(u) {
  const perLink = new Map();
  const seconds = (u.trafficMs || 200) / 1000;
  for (const t of u.traffic) {
    const key = t.from < t.to ? `${t.from}-${t.to}` : `${t.to}-${t.from}`;
    const types = perLink.get(key) ?? {};
    types[t.type] = (types[t.type] ?? 0) + t.count / seconds;
    perLink.set(key, types);
  }
  const min = live.hello?.streamPerSecMin ?? 50;
  for (const [key, types] of perLink) if (Object.values(types).reduce((a, b) => a + b, 0) < min) perLink.delete(key);
  return perLink;
}

function connect(onChange) {
  const source = new EventSource('/dashboard/feed');
  source.addEventListener('hello', (ev) => {
    const hello = JSON.parse(ev.data);
    live.hello = hello;
    live.seconds = hello.seconds;
    live.timeline = hello.timeline;
    onChange({ connected: true });
  });
  source.onmessage = (ev) => {
    const u = JSON.parse(ev.data);
    live.update = u;
    live.streams = streamsOf(u);
    if (u.seconds.length) live.seconds = [...live.seconds, ...u.seconds].slice(-300);
    if (u.timeline.length) live.timeline = [...live.timeline, ...u.timeline].slice(-200);
    for (const l of live.listeners) l(u);
    onChange({ connected: true });
  };
  source.onerror = () => onChange({ connected: source.readyState === EventSource.OPEN });
  return () => source.close();
}

/** Nodes as the page draws them: public status joined with each node's live report. */
export function nodesOf(u) {
  if (!u) return [];
  const liveById = new Map(u.nodes.map((n) => [n.id, n]));
  return u.status.nodes.map((s) => {
    const l = liveById.get(s.id) ?? {};
    const status = s.status ?? (s.up === false ? 'down' : 'up');
    const role = status === 'down' ? 'down' : s.role === 'down' ? 'down' : s.role;
    return { ...l, ...s, role, status, vote: l.vote ?? 0, progress: l.progress ?? [] };
  });
}

// ---- the cluster picture: nodes on a ring, links, messages in flight ----------------------------

const W = 420, H = 330, CX = W / 2, CY = H / 2, R = 120;
/** The message animation's frame rate and the dots in flight at most: the page must cost the cluster little. */
const framesPerSecond = 10;
const dotsMax = 60;
/**
 * A change of shape (a role, a leader, a term, a node down or paused, the network) is drawn at
 * once; numbers that merely move (indexes, rates) at most this often: under load they change on
 * every update, and repainting them is most of what the page costs the machine.
 */
const numbersEveryMs = 1_000;
/** How long a scenario's step stays the current one before the scenario goes on. */
const scenarioStepMs = 1_500;
/** Message colours (a canvas takes no CSS variables; style.css's --app, --heartbeat, --vote...). */
const append = '#4fa3e0', heartbeat = '#7d8b99', vote = '#f2b134', snapshot = '#c792ea';
const dotColours = { app: append, appResp: append, heartbeat, heartbeatResp: heartbeat, vote, voteResp: vote, preVote: vote, preVoteResp: vote, snapshot, timeoutNow: vote, readIndex: heartbeat, readIndexResp: heartbeat, accept: append, accepted: append, prepare: vote, promise: vote, nack: '#ff6b6b', chosen: '#5fd38d', catchUp: snapshot };
/** Node circles' radius: messages travel from edge to edge. */
const nodeRadius = 30;

function positions(nodes) {
  const pos = new Map();
  nodes.forEach((n, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / nodes.length;
    pos.set(n.id, { x: CX + R * Math.cos(a), y: CY + R * Math.sin(a) });
  });
  return pos;
}

function linkState(network, a, b) {
  if (!network) return 'ok';
  const cut = (network.cuts ?? []).some((c) => (c.from === a && c.to === b) || (c.from === b && c.to === a));
  if (cut) return 'cut';
  if (network.partition) {
    const ga = network.partition.findIndex((g) => g.includes(a));
    const gb = network.partition.findIndex((g) => g.includes(b));
    if (ga !== gb) return 'cut';
  }
  const faulty = (network.faults ?? []).some((f) => (f.from === '*' || f.from === a || f.from === b) && (f.to === '*' || f.to === a || f.to === b));
  return faulty ? 'faulty' : 'ok';
}

function ClusterPicture({ nodes, network, leader }) {
  const flows = useRef(null);
  const pos = positions(nodes);
  // Messages are drawn outside preact, on a canvas over the picture: moving SVG elements would
  // make the browser restyle and repaint the whole picture every frame.
  useEffect(() => {
    const dots = [];
    const onUpdate = (u) => {
      const p = positions(nodesOf(u));
      for (const t of u.traffic) {
        const a = p.get(t.from), b = p.get(t.to);
        if (!a || !b || live.streams.has(t.from < t.to ? `${t.from}-${t.to}` : `${t.to}-${t.from}`)) continue;
        // Sampled: a person sees which messages flow where, not every one of a million.
        const shown = Math.min(t.count, t.type.startsWith('heartbeat') ? 1 : 3);
        const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
        const ux = (b.x - a.x) / len, uy = (b.y - a.y) / len;
        const from = { x: a.x + ux * nodeRadius, y: a.y + uy * nodeRadius }, to = { x: b.x - ux * nodeRadius, y: b.y - uy * nodeRadius };
        for (let i = 0; i < shown; i++) dots.push({ a: from, b: to, type: t.type, start: performance.now() + (i * (u.trafficMs || 100)) / shown });
      }
      if (dots.length > dotsMax) dots.splice(0, dots.length - dotsMax);
    };
    live.listeners.add(onUpdate);
    let drewAny = false;
    // A timer, not requestAnimationFrame: a rAF loop keeps the browser drawing 60 frames a second
    // even when nothing moves; a few frames a second are enough to see messages move.
    const step = () => {
      const canvas = flows.current;
      if (!canvas || (dots.length === 0 && !drewAny)) return;
      const box = canvas.getBoundingClientRect();
      if (canvas.width !== Math.round(box.width) || canvas.height !== Math.round(box.height)) {
        canvas.width = Math.round(box.width);
        canvas.height = Math.round(box.height);
      }
      // The SVG's viewBox scaled to fit and centred (preserveAspectRatio xMidYMid meet).
      const scale = Math.min(canvas.width / W, canvas.height / H);
      const ox = (canvas.width - W * scale) / 2, oy = (canvas.height - H * scale) / 2;
      const ctx = canvas.getContext('2d');
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      const now = performance.now();
      drewAny = false;
      for (let i = dots.length - 1; i >= 0; i--) {
        const d = dots[i];
        const f = (now - d.start) / 450;
        if (f < 0) continue;
        if (f >= 1) { dots.splice(i, 1); continue; }
        ctx.globalAlpha = d.type.endsWith('Resp') || d.type === 'accepted' || d.type === 'promise' ? 0.55 : 1;
        ctx.fillStyle = dotColours[d.type] ?? '#9fb0c0';
        ctx.beginPath();
        ctx.arc(ox + (d.a.x + (d.b.x - d.a.x) * f) * scale, oy + (d.a.y + (d.b.y - d.a.y) * f) * scale, (d.type === 'snapshot' ? 6 : 4) * scale, 0, 2 * Math.PI);
        ctx.fill();
        drewAny = true;
      }
    };
    const timer = setInterval(step, 1000 / framesPerSecond);
    return () => { live.listeners.delete(onUpdate); clearInterval(timer); };
  }, []);
  const links = [];
  for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {
    const a = nodes[i], b = nodes[j];
    const pa = pos.get(a.id), pb = pos.get(b.id);
    const state = linkState(network, a.id, b.id);
    const stream = live.streams.get(`${Math.min(a.id, b.id)}-${Math.max(a.id, b.id)}`);
    if (stream && state !== 'cut') {
      const [top] = Object.entries(stream).sort((x, y) => y[1] - x[1]);
      const total = Object.values(stream).reduce((x, y) => x + y, 0);
      const rates = Object.entries(stream).sort((x, y) => y[1] - x[1]).map(([type, r]) => `${Math.round(r).toLocaleString()} ${type}/s`).join(', ');
      links.push(html`<line class=${`link stream`} stroke=${dotColours[top[0]] ?? '#9fb0c0'} stroke-width=${Math.min(9, 1.5 + Math.log10(total) * 1.5)} x1=${pa.x} y1=${pa.y} x2=${pb.x} y2=${pb.y} data-link=${`${a.id}-${b.id}`} data-link-state="stream"><title>${`nodes ${a.id} and ${b.id}: ${rates}`}</title></line>`);
      continue;
    }
    links.push(html`<line class=${`link ${state}`} x1=${pa.x} y1=${pa.y} x2=${pb.x} y2=${pb.y} data-link=${`${a.id}-${b.id}`} data-link-state=${state} />`);
  }
  return html`<div class="picture"><svg class="ring" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${`cluster of ${nodes.length} nodes, leader ${leader ?? 'none'}`}>
    <g>${links}</g>
    ${nodes.map((n) => {
      const p = pos.get(n.id);
      return html`<g class="node" data-node-id=${n.id} data-role=${n.role} data-status=${n.status} transform=${`translate(${p.x},${p.y})`}>
        <circle class="body" r=${nodeRadius} />
        <text text-anchor="middle" y="-4" font-weight="600">${`node ${n.id}`}</text>
        <text class="sub" text-anchor="middle" y="10">${n.status === 'up' ? n.role : n.status}</text>
        <text class="sub" text-anchor="middle" y="22">${`${n.epoch !== undefined && n.epoch !== String(n.term) ? 'B' : 'T'}${n.epoch ?? n.term}${n.vote ? ` v${n.vote}` : ''}`}</text>
      </g>`;
    })}
  </svg><canvas class="flows" ref=${flows} aria-hidden="true"></canvas></div>`;
}

function Legend() {
  const items = [['append', 'var(--app)'], ['heartbeat', 'var(--heartbeat)'], ['vote', 'var(--vote)'], ['snapshot', 'var(--snapshot)']];
  return html`<div class="legend">${items.map(([name, c]) => html`<span><i style=${`background:${c}`}></i>${name}</span>`)}<span>faded: replies</span><span style="color:var(--bad)">- - cut link</span></div>`;
}

// ---- logs and the leader's view -----------------------------------------------------------------

function LogBars({ nodes }) {
  const max = Math.max(1, ...nodes.map((n) => n.lastIndex ?? 0));
  const pct = (i) => `${(100 * Math.max(0, Math.min(i, max))) / max}%`;
  const span = (cls, from, to) => (to > from ? html`<span class=${cls} style=${`left:${pct(from)};width:calc(${pct(to)} - ${pct(from)})`}></span>` : null);
  return html`<div>${nodes.map((n) => html`<div class="logrow" data-log-node=${n.id}>
      <span class=${`role-${n.role}`}>node ${n.id}</span>
      <div class="logbar" title=${`snapshot ${n.snapshotIndex}, applied ${n.appliedIndex}, commit ${n.commitIndex}, last ${n.lastIndex}`}>
        ${span('snap', 0, n.snapshotIndex)}${span('applied', n.snapshotIndex, n.appliedIndex)}${span('committed', n.appliedIndex, n.commitIndex)}${span('uncommitted', n.commitIndex, n.lastIndex)}
      </div>
      <span class="nums" data-commit=${n.commitIndex}>first ${n.firstIndex} · applied ${n.appliedIndex} · commit ${n.commitIndex} · last ${n.lastIndex}</span>
    </div>`)}
    <div class="legend"><span><i style="background:#4b3a5e"></i>in a snapshot</span><span><i style="background:#2f6f4f"></i>applied</span><span><i style="background:#4fa36f"></i>committed</span><span><i style="background:#7a6a2a"></i>not yet committed</span></div>
  </div>`;
}

function LeaderView({ nodes, leader }) {
  const l = nodes.find((n) => n.id === leader);
  if (!l || !l.progress?.length) return html`<p class="help">No leader's view to show${leader ? '' : ': there is no leader'}.</p>`;
  return html`<table><thead><tr><th>follower</th><th>match</th><th>next</th><th>state</th><th>in flight</th></tr></thead>
    <tbody>${l.progress.filter((p) => p.id !== leader).map((p) => html`<tr data-progress-node=${p.id}><td>node ${p.id}</td><td>${p.match}</td><td>${p.next}</td><td>${p.state}</td><td>${p.inflight}</td></tr>`)}</tbody></table>`;
}

// ---- charts ----------------------------------------------------------------------------------

function Chart({ title, series, seconds, pick }) {
  const el = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    // At least a minute on the time axis, so a first sample or two do not stretch it over years.
    plot.current = new uPlot({ width: 300, height: 150, title, scales: { x: { time: true, range: (_u, min, max) => (max == null ? [Date.now() / 1000 - 60, Date.now() / 1000] : [Math.min(min ?? max, max - 60), max]) } }, axes: [{ stroke: '#9fb0c0', grid: { stroke: '#2c3a47' } }, { stroke: '#9fb0c0', grid: { stroke: '#2c3a47' } }], series: [{}, ...series] }, [[], ...series.map(() => [])], el.current);
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => {
    const xs = seconds.map((s) => s.at / 1000);
    plot.current?.setData([xs, ...pick.map((f) => seconds.map(f))]);
  }, [seconds]);
  return html`<div ref=${el}></div>`;
}

// ---- controls --------------------------------------------------------------------------------

function useAction() {
  const [msg, setMsg] = useState({ text: '', kind: '' });
  const run = async (what, f) => {
    setMsg({ text: `${what}…`, kind: '' });
    try {
      const out = await f();
      setMsg({ text: typeof out === 'string' ? out : `${what}: done`, kind: 'ok' });
    } catch (err) {
      setMsg({ text: `${what}: ${err.message}`, kind: 'error' });
    }
  };
  return [msg, run];
}

/** What the protocol calls a leader's epoch. */
const protocolEpoch = () => (live.hello?.protocol === 'multipaxos' ? 'ballot' : 'term');

function NodeTable({ nodes, run }) {
  return html`<table><thead><tr><th>node</th><th>role</th><th>${protocolEpoch()}</th><th>vote</th><th>commit</th><th></th></tr></thead><tbody>
    ${nodes.map((n) => html`<tr class="node-row" data-node-row=${n.id}>
      <td>${n.id}</td><td class=${`role-${n.role}`}>${n.status === 'paused' ? 'paused' : n.role}</td><td>${n.epoch ?? n.term}</td><td>${n.vote || '–'}</td><td>${n.commitIndex}</td>
      <td class="actions">
        <button data-action="crash" data-node=${n.id} disabled=${n.status === 'down'} onClick=${() => run(`crash node ${n.id}`, () => api('POST', `/cluster/nodes/${n.id}/crash`))}>crash</button>
        <button data-action="restart" data-node=${n.id} disabled=${n.status !== 'down'} onClick=${() => run(`restart node ${n.id}`, () => api('POST', `/cluster/nodes/${n.id}/restart`))}>restart</button>
        ${n.status === 'paused'
          ? html`<button data-action="resume" data-node=${n.id} onClick=${() => run(`resume node ${n.id}`, () => api('POST', `/cluster/nodes/${n.id}/resume`))}>resume</button>`
          : html`<button data-action="pause" data-node=${n.id} disabled=${n.status === 'down'} onClick=${() => run(`pause node ${n.id}`, () => api('POST', `/cluster/nodes/${n.id}/pause`))}>pause</button>`}
        <button data-action="transfer" data-node=${n.id} disabled=${n.status !== 'up' || n.role === 'leader'} onClick=${() => run(`make node ${n.id} leader`, () => api('POST', '/cluster/transfer', { to: n.id }))}>lead</button>
        <button data-action="remove-member" data-node=${n.id} onClick=${() => run(`remove node ${n.id}`, () => api('DELETE', `/cluster/members/${n.id}`))}>remove</button>
      </td></tr>`)}
  </tbody></table>`;
}

function NetworkControls({ nodes, run }) {
  const [groups, setGroups] = useState({});
  const [loss, setLoss] = useState(0);
  const [delay, setDelay] = useState(0);
  const groupOf = (id) => groups[id] ?? 'A';
  const partition = () => {
    const by = {};
    for (const n of nodes) (by[groupOf(n.id)] ??= []).push(n.id);
    const gs = Object.keys(by).sort().map((k) => by[k]);
    if (gs.length < 2) throw new Error('put the nodes in at least two groups first');
    return api('POST', '/cluster/partition', { groups: gs }).then(() => `partitioned: ${gs.map((g) => g.join(',')).join(' | ')}`);
  };
  return html`<div class="controls">
    <div class="row"><label>partition:</label>
      <span class="group-pick">${nodes.map((n) => html`<label>${n.id}
        <select data-group-node=${n.id} aria-label=${`group of node ${n.id}`} value=${groupOf(n.id)} onChange=${(e) => setGroups({ ...groups, [n.id]: e.currentTarget.value })}>
          <option>A</option><option>B</option><option>C</option></select></label>`)}</span>
      <button data-action="partition" onClick=${() => run('partition', partition)}>partition</button>
      <button data-action="heal" onClick=${() => run('heal', () => api('POST', '/cluster/heal').then(() => 'network healed'))}>heal</button>
    </div>
    <div class="row">
      <label for="loss">loss ${loss}%</label><input id="loss" data-control="loss" type="range" min="0" max="50" step="1" value=${loss} onInput=${(e) => setLoss(Number(e.currentTarget.value))} />
      <label for="delay">delay ${delay} ms</label><input id="delay" data-control="delay" type="range" min="0" max="500" step="10" value=${delay} onInput=${(e) => setDelay(Number(e.currentTarget.value))} />
      <button data-action="faults" onClick=${() => run('link faults', () => api('POST', '/cluster/faults', { loss: loss / 100, delayMs: delay, jitterMs: Math.round(delay / 4) }).then(() => `every link: loss ${loss}%, delay ${delay} ms`))}>apply</button>
      <button data-action="clear-faults" onClick=${() => run('clear faults', () => api('DELETE', '/cluster/faults').then(() => 'link faults cleared'))}>clear</button>
    </div>
    <div class="row">
      <button data-action="add-member" onClick=${() => run('add a voter', () => api('POST', '/cluster/members', { role: 'voter' }).then((r) => `added node ${r.json?.id ?? ''}`))}>add a member</button>
    </div>
  </div>`;
}

function KvControls({ run }) {
  const [key, setKey] = useState('colour');
  const [value, setValue] = useState('blue');
  return html`<div class="controls"><div class="row">
    <label for="kv-key">key</label><input id="kv-key" data-control="key" size="10" value=${key} onInput=${(e) => setKey(e.currentTarget.value)} />
    <label for="kv-value">value</label><input id="kv-value" data-control="value" size="10" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} />
    <button data-action="put" onClick=${() => run(`put ${key}`, () => api('PUT', `/kv/${encodeURIComponent(key)}`, value).then((r) => `put ${key} at index ${r.json?.index}`))}>put</button>
    <button data-action="get" onClick=${() => run(`get ${key}`, () => api('GET', `/kv/${encodeURIComponent(key)}`).then((r) => `${key} = ${r.text}`))}>get</button>
  </div></div>`;
}

function Scenarios({ protocol }) {
  const [state, setState] = useState({ name: null, steps: [], status: 'idle' });
  const start = async (s) => {
    setState({ name: s.name, steps: [], status: 'running' });
    const steps = [];
    const say = (text) => {
      if (steps.length) steps[steps.length - 1].state = 'done';
      steps.push({ text, state: 'current' });
      setState({ name: s.name, steps: [...steps], status: 'running' });
    };
    // Each step stays on screen a moment before the next begins: the narration is to be read.
    const step = async (text) => {
      say(text);
      await new Promise((r) => setTimeout(r, scenarioStepMs));
    };
    try {
      await runScenario(s, { api, live, nodesOf, step, protocol });
      if (steps.length) steps[steps.length - 1].state = 'done';
      setState({ name: s.name, steps: [...steps], status: 'done' });
    } catch (err) {
      steps.push({ text: `stopped: ${err.message}`, state: 'failed' });
      setState({ name: s.name, steps: [...steps], status: 'failed' });
    }
  };
  const running = state.status === 'running';
  return html`<div data-scenario-state=${state.status} data-scenario=${state.name ?? ''}>
    <div class="scenario-list">${scenarios.filter((s) => s.protocols.includes(protocol)).map((s) => html`<button data-action="scenario" data-scenario-name=${s.name} disabled=${running} title=${s.summary} onClick=${() => start(s)}>${s.title}</button>`)}</div>
    ${state.name ? html`<ol class="narration">${state.steps.map((st) => html`<li class=${st.state}>${st.text}</li>`)}</ol>` : html`<p class="help">Each scenario runs on this real cluster through the public API, and says what to watch.</p>`}
  </div>`;
}

/** Re-renders only when its items change (a new array): the timeline is long and rarely new. */
class Timeline extends Component {
  shouldComponentUpdate(next) {
    return next.items !== this.props.items;
  }
  render({ items }) {
    return html`<ul class="timeline" data-timeline>${items.slice(-60).reverse().map((t) => html`<li class=${`k-${t.kind}`}><time>${new Date(t.at).toLocaleTimeString()}</time>${t.text}</li>`)}</ul>`;
  }
}

/** What of an update changes the picture's shape, as a string to compare. */
function shapeOf(u) {
  if (!u) return '';
  const nodes = nodesOf(u).map((n) => `${n.id}:${n.role}:${n.status}:${n.term}:${n.vote}`).join(',');
  return `${u.status.leader}|${nodes}|${JSON.stringify(u.status.network ?? null)}|${[...live.streams.keys()].join(',')}|${live.timeline.length}`;
}

// ---- the page --------------------------------------------------------------------------------

function App() {
  const [, setTick] = useState(0);
  const [connected, setConnected] = useState(false);
  const [msg, run] = useAction();
  useEffect(() => {
    let due = null;
    let shape = '';
    return connect((c) => {
      setConnected(c.connected);
      const now = shapeOf(live.update);
      const delay = now !== shape ? 0 : numbersEveryMs;
      shape = now;
      if (delay === 0 && due !== null) {
        clearTimeout(due);
        due = null;
      }
      due ??= setTimeout(() => { due = null; setTick((t) => t + 1); }, delay);
    });
  }, []);
  const u = live.update;
  const nodes = nodesOf(u);
  const leader = u?.status.leader ?? null;
  useEffect(() => {
    const root = document.getElementById('app');
    root.dataset.leader = leader === null ? '' : String(leader);
    root.dataset.connected = String(connected);
  });
  const protocol = live.hello?.protocol ?? 'raft';
  const last = live.seconds[live.seconds.length - 1];
  if (!u) return html`<p class="loading">Connecting to the cluster…</p>`;
  return html`
    <header class="top">
      <h1>concur</h1>
      <span class="stat">protocol <b>${protocol}</b></span>
      <span class="stat">leader <b data-leader-id>${leader ?? 'none'}</b></span>
      <span class="stat">${protocolEpoch()} <b>${nodes.find((n) => n.id === leader)?.epoch ?? u.status.term}</b></span>
      <span class="stat">commits/s <b>${last?.commits ?? 0}</b></span>
      <span class="stat">write p99 <b>${last?.p99Ms ?? '–'} ms</b></span>
      <span class=${`stat conn-${connected}`}>${connected ? 'live' : 'reconnecting…'}</span>
    </header>
    <main class="grid">
      <div>
        <section class="panel"><h2>The cluster</h2><${ClusterPicture} nodes=${nodes} network=${u.status.network} leader=${leader} /><${Legend} /></section>
        <section class="panel"><h2>Nodes</h2><${NodeTable} nodes=${nodes} run=${run} /><p class=${`message ${msg.kind}`} role="status" data-message>${msg.text}</p></section>
        <section class="panel"><h2>Network</h2><${NetworkControls} nodes=${nodes} run=${run} /></section>
        <section class="panel"><h2>Keys</h2><${KvControls} run=${run} /></section>
      </div>
      <div>
        <section class="panel"><h2>Scenarios</h2><${Scenarios} protocol=${protocol} /></section>
        <section class="panel"><h2>Logs</h2><${LogBars} nodes=${nodes} /></section>
        <section class="panel"><h2>The leader's view of its followers</h2><${LeaderView} nodes=${nodes} leader=${leader} /></section>
        <section class="panel"><h2>Throughput and latency</h2><div class="charts">
          <${Chart} title="commits per second" seconds=${live.seconds} series=${[{ label: 'commits/s', stroke: '#4fa3e0' }]} pick=${[(s) => s.commits]} />
          <${Chart} title="write latency (ms)" seconds=${live.seconds} series=${[{ label: 'p50', stroke: '#5fd38d' }, { label: 'p99', stroke: '#f2b134' }]} pick=${[(s) => s.p50Ms, (s) => s.p99Ms]} />
        </div></section>
        <section class="panel"><h2>Timeline</h2><${Timeline} items=${live.timeline} /></section>
      </div>
    </main>`;
}

render(h(App, null), document.getElementById('app'));
