// The addon's pool of memory for large Buffers (TLS reads, records joined over TLS): a Buffer's memory
// goes back to the pool when the GC frees the Buffer, and the next Buffer of about that size reuses it.
import { spawnSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import test from 'ava';

import { RpcClient } from '../../src/rpc/client.js';
import { RpcServer } from '../../src/rpc/server.js';
import { createTlsClient, createTlsServer } from '../../src/rpc-tls/index.js';
import { TlsStream } from '../../src/tls/index.js';
import { loadNative, nativeAddonPath } from '../../src/tls/native.js';
import { expectKtls, makeCerts } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const native = loadNative();
const MiB = 1024 * 1024;
const ECHO = { program: 0x20000a11, version: 1, procedures: { 1: (args: Buffer) => args } };

/** Collects until `done()` holds (finalizers of external Buffers may run after the GC, from the loop). */
async function collectUntil(done: () => boolean): Promise<boolean> {
  for (let i = 0; i < 50 && !done(); i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return done();
}

test.serial('a pooled Buffer has exactly the size asked; freed by the GC it returns to the pool, and the next of that size reuses it', async (t) => {
  const before = native.blockPoolStats();
  let buffer: Buffer | null = native.pooledBuffer(200_000);
  t.is(buffer.length, 200_000);
  t.is(buffer.buffer.byteLength, 200_000, 'the block may be larger; nothing past the size is reachable');
  buffer.fill(0xab);
  buffer = null;
  t.true(await collectUntil(() => native.blockPoolStats().pooledBytes > before.pooledBytes), 'the freed Buffer went back to the pool');
  const pooled = native.blockPoolStats();
  const again = native.pooledBuffer(199_000);
  const after = native.blockPoolStats();
  t.is(after.reused, pooled.reused + 1);
  t.true(after.pooledBytes < pooled.pooledBytes);
  t.is(again.length, 199_000);
});

test.serial('sizes are checked', (t) => {
  for (const size of [0, -1, 1.5, 2 ** 31, Number.NaN]) t.throws(() => native.pooledBuffer(size), { instanceOf: RangeError }, String(size));
  t.throws(() => native.pooledBuffer('4096' as unknown as number), { instanceOf: TypeError });
});

test.serial('the pool keeps at most 64 MiB, and gives it all back once two sweeps (2 s apart) saw no use', async (t) => {
  let buffers: Buffer[] | null = Array.from({ length: 80 }, () => native.pooledBuffer(MiB).fill(1));
  t.is(buffers.length, 80);
  buffers = null;
  t.true(await collectUntil(() => native.blockPoolStats().pooledBytes >= 60 * MiB), `${native.blockPoolStats().pooledBytes} bytes pooled`);
  t.true(native.blockPoolStats().pooledBytes <= 64 * MiB);
  await new Promise((resolve) => setTimeout(resolve, 5000));
  t.like(native.blockPoolStats(), { pooledBytes: 0, pooledBlocks: 0 });
});

test.serial('RPC-with-TLS joins a large record in pooled memory, and reads it in pooled blocks; plain RPC does not touch the pool', async (t) => {
  const certs = makeCerts();
  const payload = Buffer.alloc(MiB);
  for (let i = 0; i < payload.length; i += 4) payload.writeUInt32BE(i, i);
  let argsMemory = 0;
  const echo = { ...ECHO, procedures: { 1: (args: Buffer) => ((argsMemory = args.buffer.byteLength), args) } };

  const plainServer = new RpcServer();
  plainServer.addProgram(echo);
  const { port: plainPort } = await plainServer.listen({ host: '127.0.0.1', port: 0 });
  const plainClient = new RpcClient({ host: '127.0.0.1', port: plainPort });
  const beforePlain = native.blockPoolStats().taken;
  t.true((await plainClient.call(ECHO.program, 1, 1, payload)).equals(payload));
  t.is(native.blockPoolStats().taken, beforePlain, 'plain RPC joins in memory of its own');
  plainClient.destroy();
  await plainServer.close();

  // In the kernel stage the reads come from the kernel's record layer (recvmsg), else from OpenSSL's.
  const kernelTls = expectKtls ? 'require' : 'off';
  const server = createTlsServer({ tls: { cert: certs.serverCert, key: certs.serverKey, kernelTls } });
  server.addProgram(echo);
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  const client = createTlsClient({ host: '127.0.0.1', port, probe: { program: ECHO.program, version: 1 }, tls: { ca: certs.ca, servername: 'localhost', kernelTls } });
  try {
    await client.connect();
    const before = native.blockPoolStats().taken;
    const joins: number[] = [];
    const recordBuffer = TlsStream.prototype.recordBuffer;
    TlsStream.prototype.recordBuffer = function (this: TlsStream, length: number): Buffer {
      joins.push(length);
      return recordBuffer.call(this, length);
    };
    let reply: Buffer;
    try {
      reply = await client.call(ECHO.program, 1, 1, payload);
    } finally {
      TlsStream.prototype.recordBuffer = recordBuffer;
    }
    t.true(reply.equals(payload));
    // The call's record at the server, the reply's at the client: header + length + payload each.
    t.is(joins.length, 2);
    for (const length of joins) t.true(length > MiB && length < MiB + 128, String(length));
    const reads = native.blockPoolStats().taken - before - joins.length;
    t.true(reads >= 2, `${reads} read blocks taken for 2 MiB read in 64 KiB reads`);
    // The call's record: its header, the length and the payload, all of the block handed out.
    t.true(argsMemory > MiB && argsMemory < MiB + 256, `the arguments lie in a ${argsMemory}-byte record`);
  } finally {
    await client.close();
    await server.close();
  }
});

test.serial('a worker thread that used the pool exits cleanly, ended or terminated, with Buffers of the pool still alive', (t) => {
  // In a process of its own: a handle left on a worker's loop at exit aborts (or crashes) the process.
  const worker = `
    const { setFlagsFromString } = require('node:v8');
    setFlagsFromString('--expose-gc');
    const collect = require('node:vm').runInNewContext('gc');
    const { parentPort, workerData } = require('node:worker_threads');
    // A worker to be terminated stays busy until then (else it may end by itself first).
    if (workerData.stay) setInterval(() => {}, 1000);
    const native = require(process.env.RPCTLS_ADDON);
    let freed = native.pooledBuffer(1 << 20);
    globalThis.kept = native.pooledBuffer(1 << 20);
    freed = null;
    (async () => {
      for (let i = 0; i < 50 && native.blockPoolStats().pooledBytes === 0; i++) {
        collect();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      parentPort.postMessage(native.blockPoolStats().pooledBytes);
    })();
  `;
  const main = `
    const { Worker } = require('node:worker_threads');
    const run = (terminate) => new Promise((resolve, reject) => {
      const w = new Worker(${JSON.stringify(worker)}, { eval: true, workerData: { stay: terminate } });
      w.on('message', (pooled) => {
        if (pooled === 0) reject(new Error('nothing went back to the pool'));
        if (terminate) void w.terminate();
      });
      w.on('error', reject);
      w.on('exit', resolve);
    });
    (async () => {
      console.log('ended', await run(false));
      console.log('terminated', await run(true));
    })().catch((error) => { console.error(error); process.exit(3); });
  `;
  const child = spawnSync(process.execPath, ['-e', main], { env: { ...process.env, RPCTLS_ADDON: nativeAddonPath() }, encoding: 'utf8', timeout: 60_000 });
  t.is(child.status, 0, `exit ${child.status} ${child.signal ?? ''}: ${child.stderr}`);
  t.regex(child.stdout, /^ended 0\nterminated 1\n$/);
});
