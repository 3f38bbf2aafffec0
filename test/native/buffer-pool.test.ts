// The addon's pool of memory for large Buffers (TLS reads): a Buffer's memory
// goes back to the pool when the GC frees the Buffer, and the next Buffer of about that size reuses it.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import test from 'ava';

import { loadNative } from '../../src/tls/native.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const native = loadNative();
const MiB = 1024 * 1024;

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
  await new Promise((resolve) => setTimeout(resolve, 4500));
  t.like(native.blockPoolStats(), { pooledBytes: 0, pooledBlocks: 0 });
});
