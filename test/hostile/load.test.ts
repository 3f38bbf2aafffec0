// Short load and faults-during-load runs for every `npm test` (the long ones: `npm run hardening`):
// one server process, TLS connections from this process, every reply checked against its call.
import test from 'ava';

import { describe, runLoad } from './load.js';

test.serial('L1 load, 100 TLS connections x 16 calls in flight x 5 s: no lost, duplicated or misrouted reply; server RSS and fds flat', async (t) => {
  t.timeout(90_000);
  const r = await runLoad({ connections: 100, inFlight: 16, seconds: 5 });
  t.log(describe(r));
  t.true(r.ok > 1000, `${r.ok} calls answered`);
  t.is(r.wrong, 0, 'no reply carried another call’s payload');
  t.is(r.unmatched, 0, 'no duplicate or unknown-XID reply');
  t.deepEqual(r.failed, {}, 'no call failed');
  // At most where they started: official Node 24 closes a few start-up fds of its own during the run.
  t.true(r.server.idle.fds <= r.server.first.fds, `server fds back where they started (${r.server.first.fds} -> ${r.server.idle.fds})`);
  t.is(r.server.idle.connections, 0);
  t.true(r.server.end.rss < r.server.warm.rss * 1.5, 'server RSS flat after warm-up');
  t.true(r.client.fdsAfter <= r.client.fdsBefore, 'no client fd leaked');
  t.true(r.client.resourcesAfter <= r.client.resourcesBefore, 'no client timer or handle leaked');
});

test.serial('L2 server killed (SIGKILL) and restarted mid-load: in-flight calls fail coded, clients re-probe and re-handshake, later calls succeed, nothing leaks', async (t) => {
  t.timeout(90_000);
  const connections = 50;
  const inFlight = 8;
  const r = await runLoad({ connections, inFlight, seconds: 5, killAt: 0.4 });
  t.log(describe(r));
  t.is(r.uncoded, 0, 'every failure is a coded error');
  t.true(Object.keys(r.failed).every((code) => ['ERR_RPC_CONNECTION_CLOSED', 'ERR_RPC_CONNECT'].includes(code)), JSON.stringify(r.failed));
  const failures = Object.values(r.failed).reduce((a, b) => a + b, 0);
  t.true(failures >= 1 && failures <= connections * inFlight * 2, `${failures} calls failed around the kill`);
  t.is(r.reconnects, connections, 'each client reconnected once (new probe + handshake)');
  t.true(r.okAfterRestart > 100, `${r.okAfterRestart} calls succeeded after the restart`);
  t.is(r.wrong, 0);
  t.is(r.unmatched, 0);
  t.true(r.server.idle.fds <= r.server.first.fds, `restarted server fds back where they started (${r.server.first.fds} -> ${r.server.idle.fds})`);
  t.true(r.client.fdsAfter <= r.client.fdsBefore, 'no client fd leaked');
  t.true(r.client.resourcesAfter <= r.client.resourcesBefore, 'no client timer or handle leaked');
});
