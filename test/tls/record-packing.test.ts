// TLS records on the wire for RPC traffic, counted by a relay that knows the session keys: a tick of small
// calls travels in full TLS records, not one record per call, and a large call's header shares the first
// record with its payload instead of going alone. Userspace on the host; kernel TLS in the UML runner.
import test from 'ava';

import { ForgeRelay } from '../helpers/tls-forge.js';
import { PROG, Proc, VERS, expectKtls, startTlsServer, tlsClient } from './helpers.js';

const TLS_RECORD = 16 * 1024;

test.serial('600 small calls made in one tick leave in a few full TLS records, not 600', async (t) => {
  const { server, port } = await startTlsServer();
  const relay = await ForgeRelay.start(port);
  const client = tlsClient(relay.port, { keylog: relay.keylog }, { timeout: 20_000 });
  try {
    await client.connect();
    t.deepEqual(await client.call(PROG, VERS, Proc.ECHO, Buffer.from('warm')), Buffer.from('warm'));
    const before = { toServer: relay.applicationRecords('toServer'), toClient: relay.applicationRecords('toClient') };
    const payloads = Array.from({ length: 600 }, (_, i) => Buffer.from(`call ${i}`.padEnd(12)));
    const replies = await Promise.all(payloads.map((p) => client.call(PROG, VERS, Proc.ECHO, p)));
    t.deepEqual(replies, payloads);
    const sent = relay.applicationRecords('toServer') - before.toServer;
    const answered = relay.applicationRecords('toClient') - before.toClient;
    t.log(`600 calls of 64 bytes: ${sent} TLS record(s) to the server, ${answered} back`);
    // 600 calls are 37.5 KiB: three full records, a few more where backpressure (the stream's 16 KiB
    // mark) split them over ticks; one record per call or per piece would be 600 or 1200.
    t.true(sent >= 3 && sent <= 8, `records to the server: ${sent}`);
    t.true(answered >= 2 && answered <= 40, `records to the client: ${answered}`);
  } finally {
    client.destroy();
    await relay.close();
    await server.close();
  }
});

test.serial('a large call fills its TLS records: its header does not travel alone', async (t) => {
  const { server, port } = await startTlsServer();
  const relay = await ForgeRelay.start(port);
  const client = tlsClient(relay.port, { keylog: relay.keylog }, { timeout: 20_000 });
  try {
    await client.connect();
    await client.call(PROG, VERS, 0);
    const before = relay.applicationRecords('toServer');
    // Header (mark, call header, opaque length: 48 bytes) + payload = 64 full records exactly.
    const payload = Buffer.alloc(64 * TLS_RECORD - 48, 0x5a);
    t.is((await client.call(PROG, VERS, Proc.ECHO, payload)).length, payload.length);
    const sent = relay.applicationRecords('toServer') - before;
    t.log(`${payload.length}-byte call: ${sent} TLS records (64 when every record is full)`);
    // Kernel TLS closes a record at the end of each sendmsg, so a write the socket took in parts has a
    // few short records; userspace packs exactly.
    if (expectKtls) t.true(sent >= 64 && sent <= 80, `records: ${sent}`);
    else t.is(sent, 64);
  } finally {
    client.destroy();
    await relay.close();
    await server.close();
  }
});
