// What an idle connection costs a server beyond its socket: servers hold thousands (NFS clients mount and
// sit), so a closure or buffer per connection shows up as megabytes. Measured as heap after a full GC in
// the server's own process, against a node:net server holding as many sockets from the same clients.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import test from 'ava';

const CONNECTIONS = 400;
/** A NULL call of program 0x20000001 v1 with AUTH_NONE, record mark included. */
const NULL_CALL = Buffer.from('80000028' + '00000001' + '00000000' + '00000002' + '20000001' + '00000001' + '00000000' + '0'.repeat(32), 'hex');
const SERVER = new URL('./idle-memory-server.ts', import.meta.url);

/** Heap per connection of a server in its own process once CONNECTIONS clients each sent one NULL call. */
async function perConnection(kind: 'net' | 'rpc'): Promise<number> {
  const child = fork(SERVER, [kind], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const sockets: net.Socket[] = [];
  const measure = async (): Promise<number> => {
    child.send({ measure: true });
    const [m] = (await once(child, 'message')) as [{ held: number }];
    return m.held;
  };
  try {
    const [{ port }] = (await once(child, 'message')) as [{ port: number }];
    const connect = async (): Promise<void> => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      sockets.push(socket);
      // Both servers answer; wait for it, so the connection is idle again when measured.
      const replied = once(socket, 'data');
      socket.write(NULL_CALL);
      await replied;
    };
    // A first round compiles and caches what every later connection shares: not per connection.
    for (let i = 0; i < 20; i++) await connect();
    const before = await measure();
    for (let i = 0; i < CONNECTIONS; i++) await connect();
    await new Promise((resolve) => setTimeout(resolve, 100));
    return ((await measure()) - before) / CONNECTIONS;
  } finally {
    for (const socket of sockets) socket.destroy();
    child.kill();
  }
}

test('an idle plain connection costs the server at most 1.25 KiB of heap beyond its socket', async (t) => {
  const net_ = await perConnection('net');
  const rpc = await perConnection('rpc');
  const extra = rpc - net_;
  t.log(`per connection: node:net ${(net_ / 1024).toFixed(2)} KiB, RpcServer ${(rpc / 1024).toFixed(2)} KiB, extra ${(extra / 1024).toFixed(2)} KiB`);
  // Before the connection's parts reached it through one adapter object (no closure per callback), the
  // extra was about 10 KiB; 3.2 with closures per stream listener, a timer per connection, a call
  // table made up front and an EventEmitter listener table; about 1.3 with a list of outgoing parts and
  // two heap numbers per channel; 0.73-1.10 (Node 22-26) with a field per boolean and per rarely used
  // timer; now 0.55-0.83 (Node 20-26, against a node:net server that answers as the RpcServer does).
  t.true(rpc > 1024, `RpcServer ${rpc.toFixed(0)} bytes per connection`);
  t.true(extra > 256, 'the measure sees our part of the connection');
  t.true(extra < 1.25 * 1024, `extra ${extra.toFixed(0)} bytes`);
});
