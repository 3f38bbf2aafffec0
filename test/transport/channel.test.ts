// The record channel on its own: records in and out, backpressure, and the upgrade that swaps the stream
// only at a record boundary (writing the last plaintext record itself, refusing bytes that follow it).
import net from 'node:net';
import { PassThrough, Duplex } from 'node:stream';
import test from 'ava';

import { RecordChannel, type RecordSink } from '../../src/transport/channel.js';
import { UnexpectedBytesError, UpgradeError } from '../../src/transport/errors.js';
import { until } from '../helpers/net.js';
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
  onRecord(buffer: Buffer, start: number, end: number): void {
    const record = buffer.subarray(start, end);
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

test('records in (split anywhere) and out (one stream write per tick, framed)', async (t) => {
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
  t.is(pipe.written.length, 1, 'both records in one write');
});

test('a tick of small records is one buffer; a large part is referenced, not copied, and keeps its place', async (t) => {
  const pipe = new Pipe();
  const channel = new RecordChannel(pipe, new Sink());
  for (let i = 0; i < 200; i++) channel.write(outgoing(`call ${i}`));
  await tick();
  t.is(pipe.written.length, 1);
  const expected = Array.from({ length: 200 }, (_, i) => record(Buffer.from(`call ${i}`)));
  t.deepEqual(pipe.bytes(), Buffer.concat(expected));

  pipe.written = [];
  const large = Buffer.alloc(64 * 1024, 0x5a);
  channel.write(outgoing('before'));
  channel.write([Buffer.alloc(4), Buffer.from('head'), large]);
  channel.write(outgoing('after'));
  await tick();
  t.true(pipe.written.includes(large), 'the large part itself went to the stream');
  t.deepEqual(pipe.bytes(), Buffer.concat([record(Buffer.from('before')), record(Buffer.concat([Buffer.from('head'), large])), record(Buffer.from('after'))]));

  // Small records again after a tick that needed a list of parts: one buffer, and nothing of the last tick.
  pipe.written = [];
  channel.write(outgoing('small 1'));
  channel.write(outgoing('small 2'));
  await tick();
  t.is(pipe.written.length, 1);
  t.deepEqual(pipe.bytes(), Buffer.concat([record(Buffer.from('small 1')), record(Buffer.from('small 2'))]));
});

test('lastActivity is a whole millisecond, never before the record arrived (kept in the channel, not in a heap number)', async (t) => {
  const pipe = new Pipe();
  const channel = new RecordChannel(pipe, new Sink());
  await new Promise((resolve) => setTimeout(resolve, 5));
  const before = performance.now();
  pipe.push(record(Buffer.from('one')));
  await tick();
  const at = channel.lastActivity;
  t.true(Number.isInteger(at), `lastActivity ${at}`);
  t.true(at >= before && at <= performance.now() + 1, `${at} within [${before}, now + 1 ms]`);
});

test('records written in different ticks never share bytes: an earlier write is not overwritten by a later one', async (t) => {
  // The stream holds the first write until the test releases it; the output pool must not reuse it.
  const held: Buffer[] = [];
  let release: (() => void) | null = null;
  const slow = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      held.push(chunk);
      release = cb;
    },
  });
  const channel = new RecordChannel(slow, new Sink());
  channel.write(outgoing('first'));
  await tick();
  const first = Buffer.from(held[0] as Buffer);
  for (let i = 0; i < 5000; i++) channel.write(outgoing(`later ${i}`));
  await tick();
  t.deepEqual(held[0], first);
  (release as unknown as () => void)();
});

test('a tick of small records that fills the output pool goes on in a fresh one: every record arrives whole and in order', async (t) => {
  const pipe = new Pipe();
  const channel = new RecordChannel(pipe, new Sink());
  // About 200 KiB of small records, both ways of writing them: several pools' worth in one tick.
  const bodies: string[] = [];
  for (let i = 0; i < 6000; i++) {
    const body = `record ${i} `.padEnd(20 + (i % 13), '.');
    bodies.push(body);
    if (i % 2 === 0) {
      channel.write(outgoing(body));
    } else {
      const out = channel.reserve(body.length) as Buffer;
      out.write(body, channel.reservedAt, 'latin1');
    }
  }
  await tick();
  const bytes = pipe.bytes();
  const received: string[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUInt32BE(at) & 0x7fffffff;
    received.push(bytes.toString('latin1', at + 4, at + 4 + length));
    at += 4 + length;
  }
  t.is(received.length, bodies.length);
  t.deepEqual(received, bodies);
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

test('backpressure counted before the tick ends: blocked by what waits for the tick, writable again once it left', async (t) => {
  // The stream's mark is above one tick's bytes, so the stream itself never asks to wait ('drain' never comes).
  const pipe = new Pipe({ highWaterMark: 1 << 20 });
  const sink = new Sink();
  const channel = new RecordChannel(pipe, sink);
  let ok = true;
  let n = 0;
  while (ok && n < 100_000) {
    ok = channel.write(outgoing('x'.repeat(1000)));
    n++;
  }
  t.false(ok, 'refused once a tick holds more than the stream would take');
  t.true(n > 1);
  await tick();
  t.true(channel.writable);
  t.is(sink.writable, 1);
  t.is(pipe.bytes().length, n * 1004);
});

/** A sink that counts its idle calls and may act on them (close its channel, or another). */
class IdleSink extends Sink {
  idles = 0;
  inFlight = false;
  override busy(): boolean {
    return this.inFlight;
  }
  onIdleHook: (() => void) | null = null;
  override onIdle(): void {
    this.idles++;
    this.onIdleHook?.();
  }
}

test('idle checks share one timer per idleTimeout: every silent channel hears onIdle, a busy one does not, and one destroyed mid-walk is skipped without cutting the walk short', async (t) => {
  const make = (idleTimeout: number): { sink: IdleSink; channel: RecordChannel } => {
    const sink = new IdleSink();
    return { sink, channel: new RecordChannel(new Pipe(), sink, { idleTimeout }) };
  };
  const busy = make(120);
  busy.sink.inFlight = true;
  const other = make(60_000);
  const silent = Array.from({ length: 20 }, () => make(120));
  // The walk goes from the newest channel to the oldest: the newest destroys the next in line, and the
  // rest must still be checked in the same walk.
  const newest = make(120);
  const victim = silent[silent.length - 1]!;
  let afterFirstWalk: number[] | null = null;
  newest.sink.onIdleHook = () => {
    if (afterFirstWalk !== null) return;
    victim.channel.destroy();
    afterFirstWalk = [];
    setImmediate(() => (afterFirstWalk = silent.slice(0, -1).map(({ sink }) => sink.idles)));
  };
  await until(() => afterFirstWalk !== null && afterFirstWalk.length > 0);
  // Each was checked in that walk (or, if it went idle a walk earlier, in both).
  t.true(afterFirstWalk!.every((idles) => idles >= 1), `the walk that reached the newest went on past the destroyed one: ${afterFirstWalk}`);
  t.true(victim.channel.closed, 'the channel destroyed by a neighbour is closed');
  t.is(victim.sink.idles, 0, 'a channel destroyed during the walk is not checked after it');
  t.is(busy.sink.idles, 0, 'a channel with calls in flight is not idle');
  t.is(other.sink.idles, 0, 'a longer idleTimeout has its own schedule');
  busy.sink.inFlight = false;
  await until(() => busy.sink.idles >= 1);
  t.pass('once its calls are done, it goes idle too');
  for (const c of [...silent, busy, other, newest]) c.channel.destroy();
});

test('stream listeners are shared, not made per channel: two channels on two streams hold the same functions, and a detached stream no longer reaches its channel', async (t) => {
  const a = new Pipe();
  const b = new Pipe();
  const sinkA = new Sink();
  const sinkB = new Sink();
  const channelA = new RecordChannel(a, sinkA);
  const channelB = new RecordChannel(b, sinkB);
  t.deepEqual(a.listeners('data'), b.listeners('data'));
  t.is(a.listeners('data').length, 1);
  a.push(record(Buffer.from('to a')));
  b.push(record(Buffer.from('to b')));
  await tick();
  t.deepEqual(sinkA.records.map(String), ['to a']);
  t.deepEqual(sinkB.records.map(String), ['to b']);
  channelA.destroy();
  t.is(a.listenerCount('data'), 0);
  t.is(sinkA.closed.length, 1);
  t.false(channelB.closed);
  channelB.destroy();
});

test('a write deadline due during a stall is judged after the event loop has run its I/O: progress made then counts', async (t) => {
  /** A stream that takes writes only when told (the peer reading). */
  class SlowPipe extends Duplex {
    private waiting: (() => void)[] = [];
    override _read(): void {}
    override _write(_chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
      this.waiting.push(cb);
    }
    takeAll(): void {
      for (const cb of this.waiting.splice(0)) cb();
    }
  }
  const pipe = new SlowPipe({ writableHighWaterMark: 1024 });
  const sink = new Sink();
  const channel = new RecordChannel(pipe, sink, { writeTimeout: 500 });
  // The peer "reads" from an I/O callback: a byte over loopback, sent before the stall, whose handler runs
  // when the loop next reads its sockets.
  const server = net.createServer((socket) => socket.on('data', () => pipe.takeAll()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => peer.once('connect', resolve));
  await new Promise((resolve) => setTimeout(resolve, 20));
  try {
    t.false(channel.write(outgoing('x'.repeat(2000))), 'blocked: the write timer runs');
    await tick();
    peer.write('go');
    const until_ = performance.now() + 700;
    while (performance.now() < until_);
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.deepEqual(sink.closed, [], 'not closed for a write timeout');
    t.true(sink.writable > 0, 'writable again once the stream took the bytes');
  } finally {
    peer.destroy();
    server.close();
    channel.destroy();
  }
});
