import net from 'node:net';
import { RpcServer } from '../../src/rpc/server.js';
import type { ProgramDefinition } from '../../src/rpc/program.js';

/** A server with the given programs on an ephemeral loopback port. */
export async function startServer(programs: ProgramDefinition[], options: ConstructorParameters<typeof RpcServer>[0] = {}): Promise<{ server: RpcServer; port: number }> {
  const server = new RpcServer(options);
  for (const p of programs) server.addProgram(p);
  const { port } = await server.listen({ host: '127.0.0.1' });
  return { server, port };
}

/** A raw TCP client that collects everything it receives. */
export async function rawConnect(port: number): Promise<{ socket: net.Socket; received: () => Buffer; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (c) => chunks.push(c));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks), closed };
}

/** Waits until `predicate` holds (polling), or fails after `ms`. */
export async function until(predicate: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');
