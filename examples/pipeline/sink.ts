// Stage 3: hands every result to the supervisor (actor id 0, the main thread).
import { supervisorId, type ActorFactory } from 'concur/runtime';

const sink: ActorFactory = (ctx) => ({
  receive(_from, message) {
    ctx.send(supervisorId, message);
  },
});
export default sink;
