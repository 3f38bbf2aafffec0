// UDP test helpers: a raw datagram socket, and a relay that drops, duplicates and reorders datagrams.
import dgram from 'node:dgram';

import { AUTH_NONE, type OpaqueAuth } from '../../src/rpc/auth.js';
import { writeCallHeader } from '../../src/rpc/message.js';
import { XdrWriter } from '../../src/xdr/writer.js';

/** One CALL as a UDP datagram (no record mark), version 1. */
export function callDatagram(program: number, xid: number, procedure: number, args: Buffer, cred: OpaqueAuth = AUTH_NONE): Buffer {
  const w = new XdrWriter(64);
  writeCallHeader(w, xid, program, 1, procedure, cred, AUTH_NONE);
  w.raw(args);
  return w.toBuffer();
}

/** A bound UDP socket on 127.0.0.1 that records what it receives, with the sender. */
export async function rawUdp(): Promise<{
  socket: dgram.Socket;
  port: number;
  received: { data: Buffer; port: number }[];
  send(data: Buffer, port: number): Promise<void>;
  next(ms?: number): Promise<Buffer>;
  close(): Promise<void>;
}> {
  const socket = dgram.createSocket('udp4');
  const received: { data: Buffer; port: number }[] = [];
  let waiter: ((b: Buffer) => void) | null = null;
  socket.on('message', (data, rinfo) => {
    received.push({ data, port: rinfo.port });
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(data);
    }
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  let read = 0;
  return {
    socket,
    port: socket.address().port,
    received,
    send: (data, port) => new Promise((resolve, reject) => socket.send(data, port, '127.0.0.1', (e) => (e ? reject(e) : resolve()))),
    next(ms = 2000) {
      if (read < received.length) return Promise.resolve((received[read++] as { data: Buffer }).data);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no datagram within ${ms} ms`)), ms);
        waiter = (b) => {
          clearTimeout(timer);
          read++;
          resolve(b);
        };
      });
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

/** A small deterministic generator (mulberry32), so a failing run can be repeated. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RelayFaults {
  drop: number;
  duplicate: number;
  reorder: number;
  seed: number;
}

/**
 * A UDP relay between clients and a server on 127.0.0.1: each client address gets its own upstream
 * socket (the server sees one source per client). Every datagram, both ways, is dropped, duplicated or
 * held back (sent after the next one, or after 2-20 ms) with the given probabilities.
 */
export async function lossyRelay(serverPort: number, faults: RelayFaults) {
  const random = seededRandom(faults.seed);
  const counts = { forwarded: 0, dropped: 0, duplicated: 0, reordered: 0 };
  const front = dgram.createSocket('udp4');
  const upstreams = new Map<string, dgram.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const held: (() => void)[] = [];

  const deliver = (socket: dgram.Socket, data: Buffer, port: number): void => {
    if (random() < faults.drop) {
      counts.dropped++;
      return;
    }
    const copies = random() < faults.duplicate ? 2 : 1;
    if (copies === 2) counts.duplicated++;
    const send = (): void => {
      for (let i = 0; i < copies; i++) {
        counts.forwarded++;
        socket.send(data, port, '127.0.0.1', () => undefined);
      }
    };
    if (random() < faults.reorder) {
      counts.reordered++;
      if (random() < 0.5) held.push(send);
      else {
        const timer = setTimeout(() => {
          timers.delete(timer);
          send();
        }, 2 + random() * 18);
        timers.add(timer);
      }
      return;
    }
    send();
    // Held datagrams go out after this one: they arrive out of order.
    while (held.length > 0) (held.shift() as () => void)();
  };

  front.on('message', (data, rinfo) => {
    const key = `${rinfo.address}|${rinfo.port}`;
    let upstream = upstreams.get(key);
    if (upstream === undefined) {
      const socket = dgram.createSocket('udp4');
      socket.bind(0, '127.0.0.1');
      socket.on('message', (reply) => deliver(front, reply, rinfo.port));
      upstreams.set(key, socket);
      upstream = socket;
    }
    deliver(upstream, data, serverPort);
  });
  await new Promise<void>((resolve) => front.bind(0, '127.0.0.1', resolve));
  return {
    port: front.address().port,
    counts,
    async close(): Promise<void> {
      for (const timer of timers) clearTimeout(timer);
      await Promise.all([front, ...upstreams.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
