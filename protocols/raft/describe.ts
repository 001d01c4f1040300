// One-line human renderings of messages, entries and node state, shared by the simulator's
// traces, the scenario transcripts and (later) the dashboard. Formatting only; never mutates.
import type { RaftStatus } from './raft.ts';
import { decodeConfEntry, describeConfChange } from './membership.ts';
import { EntryKind, MessageType, messageTypeName, roleName, type Entry, type Message } from './types.ts';

export function formatMessage(m: Message): string {
  const head = `${messageTypeName[m.type]} ${m.from}→${m.to} t${m.term}`;
  switch (m.type) {
    case MessageType.app: {
      const n = m.entries.length;
      const ents = n === 0 ? 'none' : n === 1 ? `${m.entries[0]!.index}/t${m.entries[0]!.term}` : `${m.entries[0]!.index}..${m.entries[n - 1]!.index}/t${m.entries[n - 1]!.term}`;
      return `${head} prev=${m.index}/t${m.logTerm} entries=${ents} commit=${m.commit}`;
    }
    case MessageType.appResp:
      return m.reject ? `${head} REJECT index=${m.index} hint=${m.rejectHint}/t${m.logTerm}` : `${head} ok index=${m.index}`;
    case MessageType.vote:
    case MessageType.preVote:
      return `${head} last=${m.index}/t${m.logTerm}${m.context !== 0 ? ' (transfer)' : ''}`;
    case MessageType.voteResp:
    case MessageType.preVoteResp:
      return `${head} ${m.reject ? 'REJECT' : 'grant'}`;
    case MessageType.heartbeat:
      return `${head} commit=${m.commit}${m.context !== 0 ? ` read-round=${m.context}` : ''}`;
    case MessageType.heartbeatResp:
      return `${head}${m.context !== 0 ? ` read-round=${m.context}` : ''}`;
    case MessageType.readIndex:
      return `${head} read=${m.context}`;
    case MessageType.readIndexResp:
      return `${head} read=${m.context} index=${m.index}`;
    case MessageType.snapshot:
      return `${head} snapshot=${m.index}/t${m.logTerm} commit=${m.commit}`;
    default:
      return head;
  }
}

const decoder = new TextDecoder();

export function formatEntry(e: Entry): string {
  if (e.kind === EntryKind.noop) return `${e.index}/t${e.term} noop`;
  if (e.kind === EntryKind.config) {
    let what: string;
    try {
      what = describeConfChange(decodeConfEntry(e.data).change);
    } catch {
      what = `<damaged: ${e.data.byteLength} bytes>`;
    }
    return `${e.index}/t${e.term} conf(${what})`;
  }
  const text = decoder.decode(e.data);
  const printable = /^[\x20-\x7e]*$/.test(text) && text.length <= 24;
  return `${e.index}/t${e.term} ${printable ? JSON.stringify(text) : `<${e.data.byteLength} bytes>`}`;
}

export function formatStatus(s: RaftStatus, applied: number = s.applied): string {
  return `${s.id}: ${roleName[s.role]} t${s.term} vote=${s.vote} lead=${s.leader} last=${s.lastIndex}/t${s.lastTerm} commit=${s.commit} applied=${applied}`;
}
