/**
 * Acceptance 3: byte compatibility with rpcgen. For each .x file, rpcgen's C XDR routines are built
 * (test/gen/rpcgen/build.sh) into a harness. Both directions are checked:
 * - TypeScript -> C: random values encoded by the generated TypeScript are decoded and re-encoded by
 *   rpcgen's C; the C bytes must equal the TypeScript bytes and decode back to the original value.
 * - C -> TypeScript: random values filled in C (rpcgen/cgen.ts) and encoded by rpcgen's C are decoded by
 *   the generated TypeScript, which must re-encode them to the same bytes.
 */
import test from 'ava';

import { toolsPresent } from '../helpers/tools.js';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { XdrReader, XdrWriter, type Codec } from '../../src/xdr/index.js';
import { emitRandomGenerators } from './rpcgen/cgen.js';
import { ModelArbitraries, REPO_ROOT, RPCSVC_DIR, compileFile, makeTempModuleDir, missingTools } from './helpers.js';

const VALUES_PER_TYPE = 60;
const BUILD_SCRIPT = join(REPO_ROOT, 'test/gen/rpcgen/build.sh');

const FILES = [
  join(RPCSVC_DIR, 'nfs_prot.x'),
  join(RPCSVC_DIR, 'mount.x'),
  join(RPCSVC_DIR, 'yp.x'),
  join(RPCSVC_DIR, 'nlm_prot.x'),
  join(RPCSVC_DIR, 'rquota.x'),
  join(REPO_ROOT, 'src/generated/mount.x'),
];

for (const file of FILES) {
  const label = file.startsWith(REPO_ROOT) ? file.slice(REPO_ROOT.length) : file;
  test(`${label}: generated TypeScript and rpcgen's C agree byte for byte`, async (t) => {
    const missing = missingTools();
    if (!toolsPresent(t, missing)) return;
    const result = compileFile(file);
    const dir = makeTempModuleDir('rpctls-gen-compat-');
    try {
      // Library types (netobj, des_block) have no rpcgen routine of their own in this file's C output.
      const types = result.types.filter((ty) => ty.xdrName !== 'netobj' && ty.xdrName !== 'des_block');
      writeFileSync(join(dir, 'types.inc'), emitRandomGenerators(result.model, types.map((ty) => ty.xdrName)));
      execFileSync('sh', [BUILD_SCRIPT, file, dir], { stdio: 'pipe' });
      writeFileSync(join(dir, 'generated.ts'), result.code);
      const module = (await import(pathToFileURL(join(dir, 'generated.ts')).href)) as Record<string, Codec<unknown>>;

      const arbitraries = new ModelArbitraries(result.model, { cStrings: true });
      const cases: { type: string; codec: Codec<unknown>; value: unknown; hex: string }[] = [];
      for (const ty of types) {
        const codec = module[ty.codecName] as Codec<unknown>;
        for (const value of fc.sample(arbitraries.forType(ty.xdrName), { numRuns: VALUES_PER_TYPE, seed: 42 })) {
          const w = new XdrWriter();
          codec.encode(w, value);
          cases.push({ type: ty.xdrName, codec, value, hex: w.toBuffer().toString('hex') });
        }
      }
      const run = spawnSync(join(dir, 'echo'), { input: cases.map((c) => `${c.type} ${c.hex}\n`).join(''), encoding: 'utf8', maxBuffer: 1 << 28 });
      assert.equal(run.status, 0, `harness failed: ${run.stderr}`);
      const replies = run.stdout.split('\n');
      let compared = 0;
      for (const [i, c] of cases.entries()) {
        const reply = replies[i] ?? '';
        const context = `${c.type} value ${fc.stringify(c.value)}`;
        t.is(reply.slice(0, 3), 'OK ', `${context}: rpcgen said ${reply}`);
        const cHex = reply.slice(3);
        t.is(cHex, c.hex, `${context}: rpcgen re-encoded different bytes`);
        const r = new XdrReader(Buffer.from(cHex, 'hex'));
        t.deepEqual(c.codec.decode(r), c.value, `${context}: decoding rpcgen's bytes`);
        r.assertEnd();
        compared++;
      }
      // C -> TypeScript, with values that originate in C.
      const generated = spawnSync(join(dir, 'echo'), {
        input: types.map((ty) => `!gen ${ty.xdrName} ${VALUES_PER_TYPE}\n`).join(''),
        encoding: 'utf8',
        maxBuffer: 1 << 28,
      });
      assert.equal(generated.status, 0, `harness failed: ${generated.stderr}`);
      const lines = generated.stdout.split('\n');
      let fromC = 0;
      types.forEach((ty, k) => {
        const codec = module[ty.codecName] as Codec<unknown>;
        for (let j = 0; j < VALUES_PER_TYPE; j++) {
          const line = lines[k * VALUES_PER_TYPE + j] ?? '';
          t.is(line.slice(0, 3), 'OK ', `${ty.xdrName}: rpcgen said ${line}`);
          const cBytes = Buffer.from(line.slice(3), 'hex');
          const r = new XdrReader(cBytes);
          const value = codec.decode(r);
          r.assertEnd();
          const w = new XdrWriter();
          codec.encode(w, value);
          t.is(w.toBuffer().toString('hex'), line.slice(3), `${ty.xdrName}: TypeScript re-encoding of C value ${fc.stringify(value)}`);
          fromC++;
        }
      });
      t.log(`${types.length} types: ${compared} TypeScript values through C, ${fromC} C values through TypeScript`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
