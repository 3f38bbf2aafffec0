// A port that does not speak ONC-RPC (an SSH server greets first, an HTTP server answers our call with
// text): probe and ping say so and show what it sent, escaped, instead of only "record of at least
// 1397966893 bytes exceeds maxRecordSize".
import test from 'ava';
import net from 'node:net';

import { json, plainServer, rpctls } from './helpers.js';

const servers: net.Server[] = [];

/** A real TCP server: `greet` goes out on connect, `answer` after the first bytes from the client. */
async function textServer(options: { greet?: string; answer?: string }): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    if (options.greet !== undefined) socket.write(options.greet);
    const answer = options.answer;
    if (answer !== undefined) socket.once('data', () => socket.end(answer));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

test.after.always(() => {
  for (const s of servers) s.close();
});

const SSH = 'SSH-2.0-OpenSSH_9.2\r\n';
// With an escape sequence in it: what the peer sent must not reach the terminal raw.
const HTTP = 'HTTP/1.1 400 Bad Request\r\nServer: \x1b]0;owned\x07nginx\r\nConnection: close\r\n\r\n';

test('probe of an SSH server: "does not appear to speak ONC-RPC", its banner escaped, in text and JSON', async (t) => {
  const port = await textServer({ greet: SSH });
  const r = await rpctls(['probe', `127.0.0.1:${port}`, '--json']);
  t.is(r.code, 4, 'no STARTTLS');
  const j = json(r);
  t.true(j.error.notOncRpc);
  t.is(j.error.peerSent, 'SSH-2.0-OpenSSH_9.2\\x0d\\x0a');
  t.is(j.error.cause.code, 'ERR_RPC_RECORD_TOO_LARGE');
  t.is(j.probeReply, null);
  const human = await rpctls(['probe', `127.0.0.1:${port}`]);
  t.is(human.code, 4);
  t.regex(human.stdout, /AUTH_TLS probe\s+no RPC reply\s+the peer does not appear to speak ONC-RPC; it sent "SSH-2\.0-OpenSSH_9\.2\\x0d\\x0a"/);
  t.regex(human.stderr, /hint: the peer does not appear to speak ONC-RPC \(an SSH server\?\): it sent "SSH-2\.0-OpenSSH_9\.2\\x0d\\x0a"; check the host and port/);
});

test('ping of an HTTP server (it answers our call with text): the hint names it, the escape sequence is escaped', async (t) => {
  const port = await textServer({ answer: HTTP });
  const r = await rpctls(['ping', `127.0.0.1:${port}`, '--count', '1', '--json']);
  t.is(r.code, 1);
  const j = json(r);
  t.true(j.error.notOncRpc);
  t.true(j.error.peerSent.startsWith('HTTP/1.1 400 Bad Request\\x0d\\x0aServer: \\x1b]0;owned\\x07nginx'));
  t.is(j.latencyMs, null);
  const human = await rpctls(['ping', `127.0.0.1:${port}`, '--count', '1']);
  t.is(human.code, 1);
  t.regex(human.stderr, /hint: the peer does not appear to speak ONC-RPC \(an HTTP server\?\): it sent "HTTP\/1\.1 400 Bad Request\\x0d\\x0a/);
  t.false(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/.test(human.stdout + human.stderr), 'no raw control characters reach the terminal');
  const tls = await rpctls(['ping', `127.0.0.1:${port}`, '--count', '1', '--tls', '--json']);
  t.is(tls.code, 4);
  t.true(json(tls).error.notOncRpc);
});

test('an RPC server that refuses the probe is not called a non-RPC peer', async (t) => {
  const plain = await plainServer();
  t.teardown(() => plain.server.close());
  const r = await rpctls(['probe', `127.0.0.1:${plain.port}`, '--json']);
  t.is(r.code, 4);
  t.is(json(r).error.notOncRpc, undefined);
});
