// Hostile catalogue, record marking (H01-H09): what a server does with malformed framing. Each entry checks
// the offending connection's fate (coded error, closed) and that a bystander on the same server is served.
import test from 'ava';

import { arena, callBody, callRecord, codeOf, raw, u32, until } from './helpers.js';

test('H01 flood of zero-length non-final fragments: closed with ERR_RPC_TOO_MANY_FRAGMENTS at maxFragments; others served', async (t) => {
  const a = await arena({ server: { maxFragments: 64 } });
  const r = await raw(a.port);
  r.write(Buffer.alloc(4 * 10_000)); // 10,000 headers "non-final, length 0"
  await r.closed;
  await until(() => a.errors.length === 1);
  t.deepEqual(a.codes(), ['ERR_RPC_TOO_MANY_FRAGMENTS']);
  t.is(r.messages().length, 0, 'nothing answered');
  await a.bystanderServed();
  await a.close();
});

test('H02 flood of empty records (zero-length final fragments): closed with ERR_RPC_MALFORMED_MESSAGE at the first; others served', async (t) => {
  const a = await arena();
  const r = await raw(a.port);
  r.write(Buffer.concat(Array.from({ length: 10_000 }, () => u32(0x80000000))));
  await r.closed;
  await until(() => a.errors.length === 1);
  t.deepEqual(a.codes(), ['ERR_RPC_MALFORMED_MESSAGE']);
  await a.bystanderServed();
  await a.close();
});

test('H03 2^31-1 fragment length: closed with ERR_RPC_RECORD_TOO_LARGE before allocating; other connections served', async (t) => {
  const a = await arena();
  const before = process.memoryUsage().arrayBuffers;
  const r = await raw(a.port);
  r.write(u32(0xffffffff), Buffer.alloc(64 * 1024, 1));
  await r.closed;
  await until(() => a.errors.length === 1);
  t.deepEqual(a.codes(), ['ERR_RPC_RECORD_TOO_LARGE']);
  t.like(a.errors[0], { size: 0x7fffffff });
  t.true(process.memoryUsage().arrayBuffers - before < 32 * 1024 * 1024, 'no allocation from the claimed length');
  await a.bystanderServed();
  await a.close();
});

test('H04 endless non-final 1-byte fragments: closed with ERR_RPC_TOO_MANY_FRAGMENTS (default cap 1024); others served', async (t) => {
  const a = await arena();
  const r = await raw(a.port);
  const fragment = Buffer.concat([u32(1), Buffer.from([0x41])]);
  // Written in pieces so the server parses as it goes; it must cut us off at fragment 1025.
  for (let i = 0; i < 40 && !r.isClosed(); i++) {
    r.write(Buffer.concat(Array.from({ length: 100 }, () => fragment)));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await r.closed;
  await until(() => a.errors.length === 1);
  t.deepEqual(a.codes(), ['ERR_RPC_TOO_MANY_FRAGMENTS']);
  t.like(a.errors[0], { max: 1024 });
  await a.bystanderServed();
  await a.close();
});

test('H05 fragments that add up past maxRecordSize: closed with ERR_RPC_RECORD_TOO_LARGE at the header that crosses it', async (t) => {
  const a = await arena({ server: { maxRecordSize: 4096 } });
  const r = await raw(a.port);
  // 3 x 1500 bytes in non-final fragments: the third header takes the record to 4500 > 4096.
  const piece = Buffer.concat([u32(1500), Buffer.alloc(1500)]);
  r.write(piece, piece, u32(1500));
  await r.closed;
  await until(() => a.errors.length === 1);
  t.deepEqual(a.codes(), ['ERR_RPC_RECORD_TOO_LARGE']);
  t.like(a.errors[0], { size: 4500, max: 4096 });
  await a.bystanderServed();
  await a.close();
});

test('H06 truncated record mark (2 of 4 header bytes, then FIN): ERR_RPC_TRUNCATED_RECORD, closed; others served', async (t) => {
  const a = await arena();
  const r = await raw(a.port);
  r.socket.end(Buffer.from([0x80, 0x00]));
  await r.closed;
  await until(() => a.errors.length === 1);
  t.deepEqual(a.codes(), ['ERR_RPC_TRUNCATED_RECORD']);
  await a.bystanderServed();
  await a.close();
});

test('H07 truncated record body (header says 256, 12 bytes, then FIN): ERR_RPC_TRUNCATED_RECORD with the count received', async (t) => {
  const a = await arena();
  const r = await raw(a.port);
  r.socket.end(Buffer.concat([u32(0x80000100), Buffer.alloc(12)]));
  await r.closed;
  await until(() => a.errors.length === 1);
  t.deepEqual(a.codes(), ['ERR_RPC_TRUNCATED_RECORD']);
  t.like(a.errors[0], { received: 12 });
  await a.bystanderServed();
  await a.close();
});

test('H08 an HTTP request on the RPC port ("GET " read as a 1.2 GB fragment): ERR_RPC_RECORD_TOO_LARGE, nothing answered', async (t) => {
  const a = await arena();
  const r = await raw(a.port);
  r.write(Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n'));
  await r.closed;
  await until(() => a.errors.length === 1);
  t.deepEqual(a.codes(), ['ERR_RPC_RECORD_TOO_LARGE']);
  t.like(a.errors[0], { size: 0x47455420 });
  t.is(r.received().length, 0);
  await a.bystanderServed();
  await a.close();
});

test('H09 a valid call in 1-byte fragments, each in its own TCP write with a pause: answered, then the next call too', async (t) => {
  const a = await arena();
  const r = await raw(a.port);
  const body = callBody({ xid: 77, args: Buffer.from('drip') });
  for (let i = 0; i < body.length; i++) {
    const last = i === body.length - 1 ? 0x80000000 : 0;
    r.write(u32(last | 1), body.subarray(i, i + 1));
    if (i % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const [reply] = await r.waitMessages(1);
  t.like(reply, { xid: 77, replyStat: 0, acceptStat: 0 });
  t.deepEqual((reply as { results: Buffer }).results, Buffer.from('drip'));
  r.write(callRecord({ xid: 78, args: Buffer.from('next') }));
  const messages = await r.waitMessages(2);
  t.like(messages[1], { xid: 78, acceptStat: 0 });
  t.false(r.isClosed());
  t.deepEqual(a.codes(), []);
  r.socket.destroy();
  await a.bystanderServed();
  await a.close();
  t.is(codeOf(undefined), undefined);
});
