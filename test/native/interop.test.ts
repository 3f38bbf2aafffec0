// The wire is real TLS 1.3: interop with Node's tls module and the openssl CLI, both directions.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';

import test from 'ava';

import { connectTlsStream, type TlsStream } from '../../src/tls/index.js';
import { clientOptions, expectKtls, makeCerts, openSslAcceptPort, readUntil, serverOptions } from './helpers.js';

test.before(() => {
  makeCerts();
});


test.serial('client against a Node tls server that sends 2 session tickets', async (t) => {
  const certs = makeCerts();
  const server = tls.createServer({
    key: certs.serverKey,
    cert: certs.serverCert,
    minVersion: 'TLSv1.3',
    ALPNProtocols: ['sunrpc'],
  });
  server.on('secureConnection', (socket) => socket.on('data', (chunk: Buffer) => socket.write(`echo:${chunk}`)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(socket, 'connect');
  const client = await connectTlsStream(socket, clientOptions());
  t.is(client.tlsInfo!.alpn, 'sunrpc');
  t.is(client.tlsInfo!.offload.rx, expectKtls);
  // Tickets follow the server's Finished; the kernel starts RX at 0 and hands them up as records.
  t.is(client.counters.rxSeqAtHandoff, 0);
  const reply = readUntil(client, 'echo:hello');
  client.write('hello');
  t.is(await reply, 'echo:hello');
  t.is(client.counters.ticketsDiscarded, 2);
  if (expectKtls) t.is(client.kernelState()!.rxSeq, 3, 'two tickets and one data record');
  const closed = once(client, 'close');
  client.end();
  await closed;
  server.close();
});

test.serial('server against a Node tls client', async (t) => {
  const certs = makeCerts();
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const client = tls.connect({
    port: (listener.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    ca: certs.ca,
    servername: 'localhost',
    ALPNProtocols: ['sunrpc'],
    cert: certs.clientCert,
    key: certs.clientKey,
  });
  let sessions = 0;
  client.on('session', () => sessions++);
  const clientSecure = once(client, 'secureConnect');
  const [raw] = await accepted;
  const server: TlsStream = await connectTlsStream(raw, serverOptions());
  await clientSecure;
  t.is(client.alpnProtocol, 'sunrpc');
  t.is(server.tlsInfo!.authMode, 'mtls');
  t.is(server.tlsInfo!.offload.tx, expectKtls);
  server.on('data', (chunk: Buffer) => server.write(Buffer.concat([Buffer.from('re:'), chunk])));
  const reply = readUntil(client, 're:ping');
  client.write('ping');
  t.is(await reply, 're:ping');
  const serverEnded = once(server, 'end');
  const clientEnded = once(client, 'end');
  client.end();
  await serverEnded;
  await clientEnded; // our close_notify answered the client's
  t.true(server.counters.closeNotifyReceived);
  t.is(sessions, 0, 'the server sends no session tickets');
  listener.close();
});

test.serial('client against openssl s_server -tls1_3', async (t) => {
  const certs = makeCerts();
  const server = spawn('openssl', [
    's_server', '-tls1_3', '-accept', '127.0.0.1:0', '-cert', join(certs.dir, 'server.pem'),
    '-key', join(certs.dir, 'server.key'), '-alpn', 'sunrpc', '-rev', '-naccept', '1',
  ]);
  const port = await openSslAcceptPort(server.stdout);
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const client = await connectTlsStream(socket, clientOptions({ ciphersuites: ['TLS_CHACHA20_POLY1305_SHA256'] }));
  t.is(client.tlsInfo!.cipher, 'TLS_CHACHA20_POLY1305_SHA256');
  t.is(client.tlsInfo!.alpn, 'sunrpc');
  const reply = readUntil(client, 'olleh');
  client.write('hello\n');
  t.regex(await reply, /olleh/);
  t.is(client.counters.ticketsDiscarded, 2);
  client.destroy();
  server.kill();
});

test.serial('server against openssl s_client -tls1_3 -alpn sunrpc', async (t) => {
  const certs = makeCerts();
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[net.Socket]>;
  const client = spawn('openssl', [
    's_client', '-tls1_3', '-alpn', 'sunrpc', '-connect', `127.0.0.1:${(listener.address() as net.AddressInfo).port}`,
    '-CAfile', join(certs.dir, 'ca.pem'), '-servername', 'localhost', '-verify_return_error',
    '-verify_hostname', 'localhost', '-ign_eof', '-brief',
  ]);
  let output = '';
  client.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  client.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [raw] = await accepted;
  const server = await connectTlsStream(raw, serverOptions());
  t.is(server.tlsInfo!.alpn, 'sunrpc');
  const request = readUntil(server, 'question\n');
  client.stdin.write('question\n');
  await request;
  server.end('answer\n');
  const [code] = (await once(client, 'exit')) as [number];
  t.is(code, 0);
  t.regex(output, /Verification: OK/);
  t.regex(output, /answer/);
  listener.close();
});
