// The one public shape of /events: every event is `{ type, node?, at?, ...its fields }`, with the
// node it concerns always under `node` (the runtime's own events name it `id`), and a node's
// `leader` as null when it knows none (the nodes report 0), as GET /cluster does. Documented field
// by field in README ("The event stream"). Must never drop an event or invent a field's value.
import type { ClusterEvent } from './backend.ts';

export function publicEvent(e: ClusterEvent): ClusterEvent {
  const { type, id, node, at, ...rest } = e;
  const out: ClusterEvent = { type };
  const who = node ?? (typeof id === 'number' ? id : undefined);
  if (who !== undefined) out.node = who;
  // An `id` that is not a node's stays what it was.
  else if (id !== undefined) out.id = id;
  if (at !== undefined) out.at = at;
  if (type === 'role' && rest.leader === 0) rest.leader = null;
  return Object.assign(out, rest);
}
