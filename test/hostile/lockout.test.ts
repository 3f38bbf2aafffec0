// Peers that hold a server's slots without using them: silent sockets, and peers that never read.
import net from 'node:net';
import test from 'ava';

import { RpcClient } from '../../src/rpc/client.js';
import { RpcServer } from '../../src/rpc/server.js';
import { PROG, Proc, VERS, arena, callRecord, codeOf, raw, until } from './helpers.js';

test.serial('H69 4,096 silent connections at the default maxConnections: a legitimate client is served within 1 s', async (t) => {
  // Default maxConnections (4096); silent sockets kept past the default 10 s firstByteTimeout so all are held.
  const server = new RpcServer({ firstByteTimeout: 60_000 });
  server.addProgram({ program: PROG, version: VERS, procedures: { [Proc.ECHO]: (args: Buffer) => args } });
  const { port } = await server.listen({ host: '127.0.0.1' });
  const silent: net.Socket[] = [];
  let evicted = 0;
  server.on('connectionEvicted', () => evicted++);
  try {
    for (let i = 0; i < 4096; i += 256) {
      await Promise.all(
        Array.from({ length: 256 }, () => {
          const socket = net.connect({ host: '127.0.0.1', port });
          socket.on('error', () => undefined);
          silent.push(socket);
          return new Promise((resolve) => socket.once('connect', resolve));
        }),
      );
    }
    await until(() => server.connections.size === 4096, 20_000);
    const client = new RpcClient({ host: '127.0.0.1', port, timeout: 1000, connectTimeout: 1000 });
    const started = performance.now();
    const reply = await client.call(PROG, VERS, Proc.ECHO, Buffer.from('legit'));
    const ms = performance.now() - started;
    t.log(`served in ${ms.toFixed(1)} ms with 4,096 silent connections held (${evicted} evicted)`);
    t.deepEqual(reply, Buffer.from('legit'));
    t.true(ms < 1000);
    t.is(evicted, 1, 'one silent connection made room');
    await client.close();
  } finally {
    for (const socket of silent) socket.destroy();
    await server.close();
  }
});

test.serial('H69b a connection that never sends a byte is closed at firstByteTimeout; one that spoke stays until idleTimeout', async (t) => {
  const a = await arena({ server: { firstByteTimeout: 300, idleTimeout: 5000 } });
  const quiet = await raw(a.port);
  const spoke = await raw(a.port);
  spoke.socket.write(callRecord({ xid: 1, procedure: Proc.ECHO, args: Buffer.from('hi') }));
  const started = Date.now();
  await quiet.closed;
  const ms = Date.now() - started;
  t.true(ms >= 250 && ms < 2000, `closed after ${ms} ms`);
  await until(() => spoke.messages().length === 1);
  t.false(spoke.isClosed());
  await a.bystanderServed();
  spoke.socket.destroy();
  await a.close();
});

test.serial('H69c a server stalled past idleTimeout and firstByteTimeout reads what came meanwhile before it calls a connection idle', async (t) => {
  // Server and clients share this process, so a synchronous wait stalls the server as a loaded machine
  // would: the calls reach its sockets while it cannot read them, and its idle checks come due. Timers run
  // before the event loop reads sockets; deciding there would close connections whose calls are waiting.
  // Timeouts long enough that setting up on a loaded machine never reaches them; the stall passes both.
  const server = new RpcServer({ idleTimeout: 1000, firstByteTimeout: 1000 });
  server.addProgram({ program: PROG, version: VERS, procedures: { [Proc.ECHO]: (args: Buffer) => args } });
  const { port } = await server.listen({ host: '127.0.0.1' });
  const spoke = new RpcClient({ host: '127.0.0.1', port, reconnect: false });
  const silent = new RpcClient({ host: '127.0.0.1', port, reconnect: false });
  try {
    t.deepEqual(await spoke.call(PROG, VERS, Proc.ECHO, Buffer.from('warm')), Buffer.from('warm'));
    await silent.connect();
    await until(() => server.connections.size === 2);
    const replies = [spoke.call(PROG, VERS, Proc.ECHO, Buffer.from('idle check')), silent.call(PROG, VERS, Proc.ECHO, Buffer.from('first byte'))];
    // After the ticks that write both calls, stall for longer than both timeouts.
    await new Promise<void>((resolve) => process.nextTick(() => process.nextTick(resolve)));
    const until_ = performance.now() + 1300;
    while (performance.now() < until_);
    t.deepEqual(await Promise.all(replies), [Buffer.from('idle check'), Buffer.from('first byte')]);
  } finally {
    spoke.destroy();
    silent.destroy();
    await server.close();
  }
});

test.serial('H69d a record whose end arrived while the server was stalled past recordTimeout is read, not timed out', async (t) => {
  const server = new RpcServer({ recordTimeout: 1000 });
  server.addProgram({ program: PROG, version: VERS, procedures: { [Proc.ECHO]: (args: Buffer) => args } });
  const { port } = await server.listen({ host: '127.0.0.1' });
  const peer = await raw(port);
  try {
    const record = callRecord({ xid: 7, procedure: Proc.ECHO, args: Buffer.from('the whole record') });
    peer.socket.write(record.subarray(0, 20));
    await new Promise((resolve) => setTimeout(resolve, 50)); // the server has read the start: the record timer runs
    peer.socket.write(record.subarray(20));
    await new Promise<void>((resolve) => process.nextTick(() => process.nextTick(resolve)));
    const until_ = performance.now() + 1300;
    while (performance.now() < until_);
    await until(() => peer.messages().length === 1 || peer.isClosed());
    t.false(peer.isClosed(), 'closed as a slow record');
    t.is(peer.messages()[0]?.xid, 7);
  } finally {
    peer.socket.destroy();
    await server.close();
  }
});

test.serial('H70 5 peers that send 20 MiB of calls and never read: each closed at writeTimeout with ERR_RPC_WRITE_TIMEOUT; others served', async (t) => {
  const a = await arena({ server: { writeTimeout: 500 } });
  const errors: Error[] = [];
  a.server.on('connectionError', (error: Error) => errors.push(error));
  const big = Buffer.alloc(256 * 1024, 1);
  const peers = await Promise.all(Array.from({ length: 5 }, () => raw(a.port)));
  for (const peer of peers) {
    peer.socket.pause(); // never read the replies
    for (let xid = 1; xid <= 80; xid++) peer.socket.write(callRecord({ xid, procedure: Proc.ECHO, args: big }));
  }
  const started = Date.now();
  await Promise.all(peers.map((p) => p.closed));
  const ms = Date.now() - started;
  t.log(`all 5 closed after ${ms} ms`);
  await until(() => errors.length >= 5);
  t.is(errors.filter((e) => codeOf(e) === 'ERR_RPC_WRITE_TIMEOUT').length, 5);
  t.regex(errors[0]?.message ?? '', /read nothing for 500 ms/);
  await a.bystanderServed();
  await a.close();
});
