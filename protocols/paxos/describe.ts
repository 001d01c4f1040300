// One-line renderings of Paxos messages for traces and transcripts.
import { formatBallot, paxosMessageTypeName, PaxosMessageType as T, ValueKind, type PaxosMessage, type Value } from './types.ts';

const decoder = new TextDecoder();

export function formatValue(v: Value): string {
  if (v.kind === ValueKind.noop) return 'noop';
  if (v.kind === ValueKind.read) return 'read';
  const text = decoder.decode(v.data);
  return /^[\x20-\x7e]*$/.test(text) && text.length <= 16 ? JSON.stringify(text) : `<${v.data.byteLength} bytes>`;
}

export function formatPaxosMessage(m: PaxosMessage): string {
  const head = `${paxosMessageTypeName[m.type]} ${m.from}→${m.to} b${formatBallot(m.ballot)}`;
  switch (m.type) {
    case T.prepare:
      return `${head} from slot ${m.slot}`;
    case T.promise:
      return `${head} accepted=[${m.proposals.map((p) => `${p.slot}:${formatValue(p.value)}@${formatBallot(p.ballot)}`).join(' ')}]`;
    case T.accept:
      return `${head} ${m.proposals.map((p) => `${p.slot}:${formatValue(p.value)}`).join(' ')}${m.slots.length > 0 ? ` chosen=${m.slots.join(',')}` : ''}`;
    case T.accepted:
      return `${head} slots=${m.slots.join(',')}`;
    case T.nack:
      return `${head} (promised higher)`;
    case T.chosen:
      return `${head} ${[...m.chosen.map((c) => `${c.slot}:${formatValue(c.value)}`), ...(m.slots.length > 0 ? [`slots=${m.slots.join(',')}`] : [])].join(' ')} commit=${m.commit}`;
    case T.heartbeat:
    case T.heartbeatResp:
      return `${head} commit=${m.commit}${m.context !== 0 ? ` read-round=${m.context}` : ''}`;
    case T.catchUp:
      return `${head} from slot ${m.slot}`;
    case T.snapshot:
      return `${head} through slot ${m.slot} commit=${m.commit}`;
    default:
      return head;
  }
}
