// A run of free consecutive ports, for client ports (ClusterOptions.clientPorts) where a caller
// has no fixed base: chaos runs and tests. Free when found: another process may take one later,
// and the node that cannot listen then says so.
import { createServer, type Server } from 'node:net';

export async function freePortBase(count: number, host = '127.0.0.1', lowest = 20_000, highest = 60_000): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = lowest + Math.floor(Math.random() * (highest - lowest - count));
    const held: Server[] = [];
    try {
      for (let p = base; p < base + count; p++) {
        const s = createServer();
        await new Promise<void>((ok, fail) => {
          s.once('error', fail);
          s.listen(p, host, () => ok());
        });
        held.push(s);
      }
      return base;
    } catch {
      // one is taken: another base
    } finally {
      await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
    }
  }
  throw new Error(`no ${count} free consecutive ports found on ${host} between ${lowest} and ${highest}`);
}
