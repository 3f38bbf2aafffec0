/**
 * Acceptance 2: for every generated type of nfs_prot.x and mount.x (Debian's, and the project's own
 * src/generated/mount.x), random values survive encode -> decode unchanged, re-encode to the same bytes,
 * and the decoder consumes exactly what the encoder wrote. Debian's files also compiled with strings as
 * Buffers, with any bytes in them (not UTF-8 ones too).
 */
import test from 'ava';

import { toolsPresent } from '../helpers/tools.js';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { compileXdrDetailed, type CompileResult } from '../../src/gen/index.js';
import { XdrReader, XdrWriter, type Codec } from '../../src/xdr/index.js';
import { ModelArbitraries, REPO_ROOT, type ArbitraryOptions, RPCSVC_DIR, compileFile, makeTempModuleDir } from './helpers.js';

type Module = Record<string, unknown>;

function roundTrip(codec: Codec<unknown>, value: unknown): void {
  const w = new XdrWriter();
  codec.encode(w, value);
  const bytes = w.toBuffer();
  assert.equal(bytes.length % 4, 0, 'XDR output is a multiple of 4 bytes');
  assert.ok(bytes.length >= codec.minSize, `encoded ${bytes.length} bytes, below minSize ${codec.minSize}`);
  const r = new XdrReader(bytes);
  const decoded = codec.decode(r);
  r.assertEnd();
  assert.deepStrictEqual(decoded, value);
  const again = new XdrWriter();
  codec.encode(again, decoded);
  assert.ok(again.toBuffer().equals(bytes), 're-encoding the decoded value gives the same bytes');
}

function registerRoundTrips(label: string, load: () => Promise<{ result: CompileResult; module: Module }>, arbitraryOptions: ArbitraryOptions = {}): void {
  test(`${label}: every type round-trips`, async (t) => {
    const { result, module } = await load();
    const arbitraries = new ModelArbitraries(result.model, arbitraryOptions);
    t.true(result.types.length > 0);
    for (const type of result.types) {
      const codec = module[type.codecName] as Codec<unknown> | undefined;
      t.truthy(codec, `${type.codecName} is exported`);
      if (codec === undefined) continue;
      try {
        fc.assert(fc.property(arbitraries.forType(type.xdrName), (value) => roundTrip(codec, value)), { numRuns: 150 });
      } catch (error) {
        t.fail(`${type.xdrName}: ${(error as Error).message}`);
      }
    }
    t.log(`${result.types.length} types checked`);
  });
}

for (const name of ['nfs_prot.x', 'mount.x']) {
  const path = join(RPCSVC_DIR, name);
  if (!existsSync(path)) {
    test(`${name} (rpcsvc-proto)`, (t) => {
      toolsPresent(t, `${path} is missing; apt-get install rpcsvc-proto`);
    });
    continue;
  }
  for (const strings of ['utf8', 'buffer'] as const) {
    registerRoundTrips(`${name} (rpcsvc-proto)${strings === 'buffer' ? ", strings: 'buffer' (any bytes)" : ''}`, async () => {
      const result = compileFile(path, { strings });
      const dir = makeTempModuleDir('rpctls-gen-rt-');
      try {
        const file = join(dir, name.replace(/\.x$/, '.ts'));
        writeFileSync(file, result.code);
        return { result, module: (await import(pathToFileURL(file).href)) as Module };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, { byteStrings: strings === 'buffer' });
  }
}

for (const name of ['mount', 'rpcbind']) {
  registerRoundTrips(`src/generated/${name}.x (checked in)`, async () => {
    const source = readFileSync(join(REPO_ROOT, `src/generated/${name}.x`), 'utf8');
    const result = compileXdrDetailed(source, { fileName: `${name}.x` });
    return { result, module: (await import(`../../src/generated/${name}.js`)) as Module };
  });
}
