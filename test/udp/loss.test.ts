// Acceptance 3 of issue 17: through a relay that drops, duplicates and reorders about 20% of datagrams
// each way, every call completes, each non-idempotent call runs exactly once, and no reply goes to the
// wrong call.
import test from 'ava';
import { RpcServer } from '../../src/rpc/server.js';
import { UdpClient } from '../../src/rpc/udp-client.js';
import { lossyRelay } from '../helpers/udp.js';

const PROG = 0x20000102;
const APPEND = 1;

for (const seed of [1, 2]) {
  test(`seed ${seed}: 3 clients x 150 calls through 20% drop, 20% duplication, 20% reordering`, async (t) => {
    const runs = new Map<string, number>();
    const server = new RpcServer();
    server.addProgram({
      program: PROG,
      version: 1,
      procedures: {
        // Not idempotent: a second run of one call would show as a count of 2.
        [APPEND]: async (args: Buffer) => {
          const key = args.toString('hex');
          runs.set(key, (runs.get(key) ?? 0) + 1);
          // Every fourth call is slow, so retransmissions also arrive while it runs.
          if (args.readUInt32BE(4) % 4 === 0) await new Promise((r) => setTimeout(r, 5));
          return Buffer.concat([args, Buffer.from('0000000a', 'hex')]);
        },
      },
    });
    const { port } = await server.listen({ host: '127.0.0.1', udp: true });
    const relay = await lossyRelay(port, { drop: 0.2, duplicate: 0.2, reorder: 0.2, seed });
    const clients = [0, 1, 2].map(() => new UdpClient({ port: relay.port, retransmitTimeout: 40, maxRetransmitTimeout: 160, timeout: 20_000, maxPendingCalls: 16 }));
    let wrong = 0;
    await Promise.all(
      clients.map(async (client, c) => {
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < 150) {
            const args = Buffer.alloc(8);
            args.writeUInt32BE(c, 0);
            args.writeUInt32BE(next++, 4);
            const reply = await client.call(PROG, 1, APPEND, args);
            if (!reply.subarray(0, 8).equals(args)) wrong++;
          }
        };
        await Promise.all(Array.from({ length: 16 }, worker));
      }),
    );
    t.is(wrong, 0, 'no reply was given to another call');
    t.is(runs.size, 450, 'every call ran');
    t.true([...runs.values()].every((n) => n === 1), `each exactly once (counts: ${[...new Set(runs.values())]})`);
    const stats = server.udpStats!;
    const retransmits = clients.reduce((n, c) => n + c.stats.retransmits, 0);
    t.true(relay.counts.dropped > 50 && relay.counts.duplicated > 50 && relay.counts.reordered > 50, JSON.stringify(relay.counts));
    t.true(retransmits > 0, `${retransmits} retransmissions`);
    t.true(stats.duplicateHits + stats.duplicateDrops > 0, `duplicate cache: ${stats.duplicateHits} hits, ${stats.duplicateDrops} dropped while running`);
    t.true(clients.some((c) => c.stats.unmatchedReplies > 0), 'duplicated replies were counted, not delivered');
    t.log(`relay ${JSON.stringify(relay.counts)}; retransmits ${retransmits}; DRC hits ${stats.duplicateHits}, in-progress drops ${stats.duplicateDrops}`);
    await Promise.all(clients.map((c) => c.close()));
    await relay.close();
    await server.close();
  });
}
