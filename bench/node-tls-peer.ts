// The node:tls baseline of the TLS benches: a node:tls server that answers every `requestBytes` it reads
// with `replyBytes`, and a client that sends one request (a small header and its body, gathered into one
// write, as the RPC sender does) and resolves when its reply is in. Same process, same suite as the RPC.
import { once } from 'node:events';
import type net from 'node:net';
import tls from 'node:tls';

export interface NodeTlsPeer {
  /** One request out, resolved when its reply is in; any number may be in flight. */
  exchange(): Promise<void>;
  /** The suite the session negotiated. */
  readonly cipher: string;
  close(): Promise<void>;
}

export async function startNodeTlsPeer(options: {
  certs: { ca: string; cert: string; key: string };
  suite: string;
  headerBytes: number;
  bodyBytes: number;
  replyBytes: number;
}): Promise<NodeTlsPeer> {
  const { certs, suite, headerBytes, bodyBytes, replyBytes } = options;
  const requestBytes = headerBytes + bodyBytes;
  const reply = Buffer.alloc(replyBytes, 1);
  const server = tls.createServer({ cert: certs.cert, key: certs.key, minVersion: 'TLSv1.3', ciphers: suite }, (socket) => {
    let pending = 0;
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.length;
      while (pending >= requestBytes) {
        pending -= requestBytes;
        socket.write(reply);
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const socket = tls.connect({ host: '127.0.0.1', port, ca: certs.ca, servername: 'localhost', minVersion: 'TLSv1.3', ciphers: suite });
  await once(socket, 'secureConnect');
  const waiting: (() => void)[] = [];
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    while (received >= replyBytes) {
      received -= replyBytes;
      waiting.shift()?.();
    }
  });
  const header = Buffer.alloc(headerBytes, 0x80);
  const body = Buffer.alloc(bodyBytes, 0x5a);
  return {
    cipher: socket.getCipher().standardName,
    exchange: () =>
      new Promise<void>((resolve) => {
        waiting.push(resolve);
        socket.cork();
        socket.write(header);
        if (bodyBytes > 0) socket.write(body);
        socket.uncork();
      }),
    async close() {
      socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
