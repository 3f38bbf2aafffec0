import test from 'ava';
import { RecordDecoder, DEFAULT_MAX_RECORD_SIZE } from '../../src/transport/record-marking.js';
import { RecordTooLargeError, TooManyFragmentsError, TruncatedRecordError } from '../../src/transport/errors.js';
import { RpcClient } from '../../src/rpc/client.js';
import { rawConnect, startServer, hex } from '../helpers/net.js';
import { frame, record } from '../helpers/records.js';

const ECHO = { program: 0x20000001, version: 1, procedures: { 1: (args: Buffer) => args } };

test('a record split into 1-byte fragments, fed 1 byte at a time, reassembles', (t) => {
  const payload = Buffer.from('0123456789abcdef');
  const wire = frame(payload, 1);
  t.is(wire.length, payload.length * 5, 'one 4-byte mark per payload byte');
  t.is(wire.readUInt32BE(0), 1, 'first fragment is not last');
  t.is(wire.readUInt32BE(wire.length - 5), 0x80000001, 'last fragment has bit 31');
  const records: Buffer[] = [];
  const decoder = new RecordDecoder((r) => records.push(Buffer.from(r)));
  for (const byte of wire) decoder.push(Buffer.from([byte]));
  t.deepEqual(records, [payload]);
  t.true(decoder.idle);
});

test('a record inside one chunk is delivered as a view (no copy); several records per chunk all arrive', (t) => {
  const chunk = Buffer.concat([frame(Buffer.from('abcd'), 1 << 30), frame(Buffer.from('efgh'), 1 << 30)]);
  const records: Buffer[] = [];
  new RecordDecoder((r) => records.push(r)).push(chunk);
  t.is(records.length, 2);
  t.is(records[0]!.buffer, chunk.buffer);
  t.is(records[1]!.toString(), 'efgh');
});

test('a header announcing 2 GiB - 1 is refused as it arrives, before any allocation', (t) => {
  const decoder = new RecordDecoder(() => t.fail('no record expected'));
  const err = t.throws(() => decoder.push(hex('ffffffff')), { instanceOf: RecordTooLargeError });
  t.is(err!.code, 'ERR_RPC_RECORD_TOO_LARGE');
  t.is(err!.max, DEFAULT_MAX_RECORD_SIZE);
  t.is(err!.size, 0x7fffffff);
});

test('fragment sizes add up against maxRecordSize across fragments', (t) => {
  const decoder = new RecordDecoder(() => t.fail(), { maxRecordSize: 100 });
  decoder.push(Buffer.concat([hex('00000032'), Buffer.alloc(50)]));
  t.throws(() => decoder.push(hex('80000033')), { instanceOf: RecordTooLargeError });
});

test('endless zero-length non-final fragments hit the fragment cap', (t) => {
  const decoder = new RecordDecoder(() => t.fail(), { maxFragments: 1000 });
  t.throws(() => decoder.push(Buffer.alloc(4 * 1001)), { instanceOf: TooManyFragmentsError });
});

test('a stream that ends mid-record or mid-header yields a truncated-record error', (t) => {
  const a = new RecordDecoder(() => t.fail());
  a.push(hex('80000010 0102'));
  const err = a.end();
  t.true(err instanceof TruncatedRecordError);
  t.is(err!.received, 2, 'counts the bytes actually received');
  const b = new RecordDecoder(() => t.fail());
  b.push(hex('8000'));
  t.true(b.end() instanceof TruncatedRecordError);
  t.is(new RecordDecoder(() => undefined).end(), null);
});

test('over TCP: a 2 GiB header closes that connection only; a second connection keeps working', async (t) => {
  const { server, port } = await startServer([ECHO]);
  const errors: Error[] = [];
  server.on('connectionError', (e) => errors.push(e));
  const good = new RpcClient({ port });
  t.deepEqual(await good.call(0x20000001, 1, 1, Buffer.from('before')), Buffer.from('before'));
  const before = process.memoryUsage().arrayBuffers;
  const bad = await rawConnect(port);
  bad.socket.write(hex('ffffffff 00000000'));
  await bad.closed;
  t.true(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'nothing near 2 GiB was allocated');
  t.is((errors[0] as { code?: string })?.code, 'ERR_RPC_RECORD_TOO_LARGE');
  t.deepEqual(await good.call(0x20000001, 1, 1, Buffer.from('after')), Buffer.from('after'));
  await good.close();
  await server.close();
});

test('over TCP: a call split into 1-byte fragments is answered; the client can send that way too', async (t) => {
  const { server, port } = await startServer([ECHO]);
  const client = new RpcClient({ port, maxFragmentSize: 1 });
  const payload = Buffer.from('fragmented payload!');
  t.deepEqual(await client.call(0x20000001, 1, 1, payload), payload);
  await client.close();
  await server.close();
});

test('over TCP: a peer that cuts the stream mid-record gives the server a truncated-record error', async (t) => {
  const { server, port } = await startServer([ECHO]);
  const closed = new Promise<Error>((resolve) => server.once('connectionError', resolve));
  const raw = await rawConnect(port);
  raw.socket.end(hex('80000100 00000001 00000000'));
  const err = await closed;
  t.is((err as { code?: string }).code, 'ERR_RPC_TRUNCATED_RECORD');
  await server.close();
});

test('pause() inside a chunk keeps the unparsed rest (a view), nothing dropped; pushing it again resumes', (t) => {
  const chunk = Buffer.concat(['one', 'two', 'three'].map((body) => record(Buffer.from(body, 'latin1'))));
  const seen: string[] = [];
  const decoder: RecordDecoder = new RecordDecoder((record) => {
    seen.push(record.toString('latin1'));
    if (seen.length === 1) decoder.pause();
  });
  decoder.push(chunk);
  t.deepEqual(seen, ['one']);
  t.is(decoder.heldBytes, chunk.length - 7);
  t.false(decoder.idle, 'held bytes make it unsafe to swap the stream');
  decoder.unpause();
  const held = decoder.takeHeld();
  t.is(held?.buffer, chunk.buffer, 'a view of the chunk, not a copy');
  decoder.push(held!);
  t.deepEqual(seen, ['one', 'two', 'three']);
  t.true(decoder.idle);
});

test('text from a peer that is no RPC peer: the error keeps its first bytes (header included) and says it was the first record', (t) => {
  const ssh = Buffer.from('SSH-2.0-OpenSSH_9.2\r\n', 'latin1');
  const err = t.throws(() => new RecordDecoder(() => undefined).push(ssh), { instanceOf: RecordTooLargeError }) as RecordTooLargeError;
  t.is(err.size, 0x5353482d, '"SSH-" read as a length');
  t.deepEqual(err.head, ssh);
  t.true(err.firstRecord);
  // Split before the header completes, and after a real record: the head still starts at the header; not first.
  const decoder = new RecordDecoder(() => undefined);
  decoder.push(record(Buffer.from('ok')));
  decoder.push(Buffer.from('HT'));
  const late = t.throws(() => decoder.push(Buffer.from(`TP/1.1 400 Bad Request\r\n${'x'.repeat(100)}`)), { instanceOf: RecordTooLargeError }) as RecordTooLargeError;
  t.is(late.head?.length, 64, 'at most 64 bytes kept');
  t.is(late.head?.toString('latin1', 0, 12), 'HTTP/1.1 400');
  t.false(late.firstRecord);
});

test('a record of 32 KiB or more spread over chunks is joined into memory from allocateRecord, once; a shorter one is not', (t) => {
  const asked: number[] = [];
  class OwnMemory extends RecordDecoder {
    protected override allocateRecord(length: number): Buffer {
      asked.push(length);
      // Dirty memory, as a pool's would be: every byte must be overwritten before delivery.
      return Buffer.alloc(length, 0xee);
    }
  }
  const records: Buffer[] = [];
  const decoder = new OwnMemory((r) => records.push(r));
  const large = Buffer.alloc(100_000);
  for (let i = 0; i < large.length; i++) large[i] = i % 251;
  const small = Buffer.alloc(32 * 1024 - 1, 7);
  // Several fragments, fed in uneven chunks: some pieces are kept as views, some copied to a stage.
  for (const payload of [large, small]) {
    const wire = frame(payload, 40_000);
    for (let at = 0; at < wire.length; at += 17_000) decoder.push(wire.subarray(at, at + 17_000));
  }
  t.deepEqual(asked, [100_000]);
  t.is(records.length, 2);
  t.true(records[0]!.equals(large));
  t.is(records[0]!.buffer.byteLength, 100_000, 'the record is the whole allocation: nothing beyond it is reachable');
  t.true(records[1]!.equals(small));
});
