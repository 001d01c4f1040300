// The fenced store (fenced-store.ts) as an actor: one worker that answers write and read
// messages from any actor or from the supervisor. With a storage directory, every accepted write
// is on disk (written aside, fsynced, renamed) before it is answered, and a restarted actor
// starts from it: the highest token it has seen must outlive the process.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { ActorContext, ActorFactory } from '../../runtime/actor.ts';
import { FencedStore, type FencedStoreReply, type FencedStoreRequest } from './fenced-store.ts';

const fileName = 'fenced-store.json';

const fencedStoreActor: ActorFactory = (ctx: ActorContext) => {
  const file = ctx.storage.dir === null ? null : join(ctx.storage.dir, fileName);
  const store = file !== null && existsSync(file) ? FencedStore.fromImage(JSON.parse(readFileSync(file, 'utf8'))) : new FencedStore();

  const persist = () => {
    if (file === null) return;
    const aside = `${file}.tmp`;
    const fd = openSync(aside, 'w');
    try {
      writeSync(fd, JSON.stringify(store.image()));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(aside, file);
    const dirFd = openSync(ctx.storage.dir!, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  };

  return {
    receive(from, message) {
      const m = message as FencedStoreRequest;
      let reply: FencedStoreReply;
      if (m?.type === 'write') {
        const result = store.write(m.write);
        if (result.ok) persist();
        reply = { type: 'result', id: m.id, result };
      } else if (m?.type === 'read') {
        reply = { type: 'result', id: m.id, result: store.read(m.key) };
      } else {
        ctx.emit({ type: 'fenced-store-unknown-message', message: JSON.stringify(message).slice(0, 200) });
        return;
      }
      ctx.send(from, reply);
    },
    control: {
      status: () => ({ accepted: store.accepted, rejected: store.rejected, highest: store.image().highest, incarnation: ctx.incarnation }),
    },
  };
};

export default fencedStoreActor;
