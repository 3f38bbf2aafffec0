// The record channel on its own: records in and out, backpressure, and the upgrade that swaps the stream
// only at a record boundary (writing the last plaintext record itself, refusing bytes that follow it).
import { PassThrough, Duplex } from 'node:stream';
import test from 'ava';

import { RecordChannel, type RecordSink } from '../../src/transport/channel.js';
import { UnexpectedBytesError, UpgradeError } from '../../src/transport/errors.js';
import { frame, record } from '../helpers/records.js';

/** A duplex whose writes are collected and whose reads are pushed by the test. */
class Pipe extends Duplex {
  written: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.written.push(chunk);
    cb();
  }
  bytes(): Buffer {
    return Buffer.concat(this.written);
  }
}

class Sink implements RecordSink {
  records: Buffer[] = [];
  writable = 0;
  closed: (Error | undefined)[] = [];
  onRecordHook: ((record: Buffer) => void) | null = null;
  onRecord(record: Buffer): void {
    this.records.push(Buffer.from(record));
    this.onRecordHook?.(record);
  }
  onWritable(): void {
    this.writable++;
  }
  onClose(error: Error | undefined): void {
    this.closed.push(error);
  }
  busy(): boolean {
    return false;
  }
  onIdle(): void {}
}

/** A record to write: 4 bytes for the mark, then the body. */
function outgoing(body: string): Buffer[] {
  return [Buffer.alloc(4), Buffer.from(body)];
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('records in (split anywhere) and out (one cork per tick, framed)', async (t) => {
  const pipe = new Pipe();
  const sink = new Sink();
  const channel = new RecordChannel(pipe, sink);
  const bytes = Buffer.concat([frame(Buffer.from('one'), 2), record(Buffer.from('two'))]);
  for (let i = 0; i < bytes.length; i += 3) pipe.push(bytes.subarray(i, i + 3));
  await tick();
  t.deepEqual(sink.records.map(String), ['one', 'two']);
  t.true(channel.write(outgoing('a')));
  t.true(channel.write(outgoing('bc')));
  await tick();
  t.is(pipe.bytes().toString('hex'), Buffer.concat([record(Buffer.from('a')), record(Buffer.from('bc'))]).toString('hex'));
});

test('upgrade from inside onRecord: the last plaintext record goes out first, then the new stream carries records both ways', async (t) => {
  const old = new Pipe();
  const next = new Pipe();
  const sink = new Sink();
  const channel = new RecordChannel(old, sink);
  let handedOver = null as Duplex | null;
  let upgraded: Promise<void> | null = null;
  sink.onRecordHook = (received) => {
    if (String(received) !== 'probe') return;
    upgraded = channel.upgrade(outgoing('STARTTLS'), async (stream) => {
      handedOver = stream;
      // The reply was flushed before the upgrader got the stream, and writes wait meanwhile.
      t.is(old.bytes().toString(), record(Buffer.from('STARTTLS')).toString());
      t.false(channel.writable);
      t.true(channel.upgrading);
      return next;
    });
  };
  old.push(record(Buffer.from('probe')));
  await tick();
  t.truthy(upgraded);
  await upgraded;
  t.is(handedOver, old as Duplex | null);
  t.true(channel.writable);
  t.is(sink.writable, 1, 'the sink hears it may write again');
  next.push(record(Buffer.from('after')));
  await tick();
  t.deepEqual(sink.records.map(String), ['probe', 'after']);
  channel.write(outgoing('on-new'));
  await tick();
  t.is(next.bytes().toString(), record(Buffer.from('on-new')).toString());
  t.is(old.listenerCount('data'), 0, 'the old stream is no longer read');
});

test('bytes after the upgrade record: ERR_RPC_UNEXPECTED_BYTES, nothing written, the upgrader never runs', async (t) => {
  const old = new Pipe();
  const sink = new Sink();
  const channel = new RecordChannel(old, sink);
  let ran = false;
  let upgraded: Promise<void> | null = null;
  sink.onRecordHook = () => {
    upgraded ??= channel.upgrade(outgoing('STARTTLS'), async () => {
      ran = true;
      return new Pipe();
    });
  };
  old.push(Buffer.concat([record(Buffer.from('probe')), record(Buffer.from('extra'))]));
  const error = await t.throwsAsync(async () => {
    await tick();
    await upgraded;
  });
  t.true(error instanceof UnexpectedBytesError);
  t.is((error as UnexpectedBytesError).received, record(Buffer.from('extra')).length);
  t.false(ran);
  t.is(old.written.length, 0, 'no STARTTLS after a violation');
  t.deepEqual(sink.records.map(String), ['probe'], 'the record after the boundary was never parsed');
  t.true(channel.closed);
  t.true(sink.closed[0] instanceof UnexpectedBytesError);
});

test('stopAfterNextRecord (client): the reply is the last record read until the upgrade; later bytes are a violation', async (t) => {
  const old = new Pipe();
  const sink = new Sink();
  const channel = new RecordChannel(old, sink);
  channel.stopAfterNextRecord();
  t.false(channel.writable, 'nothing more is written in clear once the upgrade is prepared');
  old.push(Buffer.concat([record(Buffer.from('reply')), record(Buffer.from('sneaky'))]));
  await tick();
  t.deepEqual(sink.records.map(String), ['reply']);
  await t.throwsAsync(channel.upgrade(null, async () => new Pipe()), { instanceOf: UnexpectedBytesError });
});

test('an upgrade refused mid-record, after close, and twice at once', async (t) => {
  const pipe = new Pipe();
  const sink = new Sink();
  const channel = new RecordChannel(pipe, sink);
  pipe.push(record(Buffer.from('partial record')).subarray(0, 6));
  await tick();
  await t.throwsAsync(channel.upgrade(null, async () => new Pipe()), { instanceOf: UpgradeError, message: /inside a record/ });
  const fresh = new RecordChannel(new Pipe(), new Sink());
  const first = fresh.upgrade(null, () => new Promise(() => undefined));
  await t.throwsAsync(fresh.upgrade(null, async () => new Pipe()), { instanceOf: UpgradeError, message: /already under way/ });
  fresh.destroy();
  await t.throwsAsync(first, { instanceOf: UpgradeError });
  await t.throwsAsync(fresh.upgrade(null, async () => new Pipe()), { instanceOf: UpgradeError, message: /closed/ });
});

test('destroyed while the upgrader runs: its signal aborts and the new stream is not used', async (t) => {
  const sink = new Sink();
  const channel = new RecordChannel(new Pipe(), sink);
  let signalSeen: AbortSignal | null = null;
  const upgraded = channel.upgrade(null, (_stream, signal) => {
    signalSeen = signal;
    return new Promise((resolve) => signal.addEventListener('abort', () => resolve(new PassThrough())));
  });
  await tick();
  t.truthy(signalSeen);
  channel.destroy(new Error('peer gone'));
  t.true(signalSeen!.aborted);
  await t.throwsAsync(upgraded, { instanceOf: UpgradeError });
  t.is(sink.closed.length, 1);
  t.is(sink.closed[0]?.message, 'peer gone');
});

test('backpressure: write() returns false when the stream is full; onWritable when it drains', async (t) => {
  const stream = new PassThrough({ highWaterMark: 16 });
  const sink = new Sink();
  const channel = new RecordChannel(stream, sink);
  let ok = true;
  for (let i = 0; i < 10 && ok; i++) ok = channel.write(outgoing('0123456789abcdef'));
  t.false(ok);
  t.false(channel.writable);
  stream.resume();
  await tick();
  t.true(channel.writable);
  t.true(sink.writable >= 1);
});
