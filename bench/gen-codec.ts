/**
 * Generated codec vs a hand-written one for the same struct, measured in the same run.
 * Run: node --import tsx bench/gen-codec.ts   (target: generated within 1.2x of hand-written)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compileXdr } from '../src/gen/index.js';
import { XdrReader, XdrWriter, type Codec } from '../src/xdr/index.js';

const SOURCE = `
struct attrs {
  unsigned type;
  unsigned mode;
  unsigned nlink;
  unsigned uid;
  unsigned gid;
  unsigned hyper size;
  unsigned hyper fileid;
  opaque fh<64>;
  string name<255>;
  int flavors<16>;
  bool *verified;
};`;

interface Attrs {
  type: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: bigint;
  fileid: bigint;
  fh: Buffer;
  name: string;
  flavors: number[];
  verified: boolean | null;
}

/** What a careful person writes by hand against the same XdrWriter/XdrReader core. */
const handWritten: Codec<Attrs> = {
  minSize: 52,
  encode(w, v) {
    w.uint(v.type).uint(v.mode).uint(v.nlink).uint(v.uid).uint(v.gid);
    w.uhyper(v.size).uhyper(v.fileid);
    w.opaque(v.fh, 64).string(v.name, 255);
    if (v.flavors.length > 16) throw new RangeError('too many flavors');
    w.uint(v.flavors.length);
    for (const f of v.flavors) w.int(f);
    if (v.verified === null) w.bool(false);
    else w.bool(true).bool(v.verified);
  },
  decode(r) {
    const type = r.uint();
    const mode = r.uint();
    const nlink = r.uint();
    const uid = r.uint();
    const gid = r.uint();
    const size = r.uhyper();
    const fileid = r.uhyper();
    const fh = r.opaque(64);
    const name = r.string(255);
    const n = r.length('flavors', 16, 4);
    const flavors = new Array<number>(n);
    for (let i = 0; i < n; i++) flavors[i] = r.int();
    const verified = r.bool() ? r.bool() : null;
    return { type, mode, nlink, uid, gid, size, fileid, fh, name, flavors, verified };
  },
};

const VALUE: Attrs = {
  type: 1, mode: 0o644, nlink: 1, uid: 1000, gid: 1000, size: 123456789n, fileid: 42n,
  fh: Buffer.alloc(32, 7), name: 'some-file-name.txt', flavors: [1, 390004], verified: true,
};

function time(codec: Codec<Attrs>, iterations: number): number {
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const w = new XdrWriter();
    codec.encode(w, VALUE);
    const decoded = codec.decode(new XdrReader(w.toBuffer()));
    sink += decoded.nlink;
  }
  const elapsed = Number(process.hrtime.bigint() - start);
  if (sink !== iterations) throw new Error('benchmark result mismatch');
  return elapsed / iterations;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rpctls-bench-gen-'));
  let generated: Codec<Attrs>;
  try {
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    const root = fileURLToPath(new URL('../', import.meta.url));
    writeFileSync(
      join(dir, 'attrs.ts'),
      compileXdr(SOURCE, { fileName: 'attrs.x', xdrImport: join(root, 'src/xdr/index.js'), runtimeImport: join(root, 'src/runtime/stubs.js') }),
    );
    generated = ((await import(pathToFileURL(join(dir, 'attrs.ts')).href)) as { AttrsCodec: Codec<Attrs> }).AttrsCodec;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Same bytes first, or the comparison means nothing.
  const a = new XdrWriter();
  generated.encode(a, VALUE);
  const b = new XdrWriter();
  handWritten.encode(b, VALUE);
  if (!a.toBuffer().equals(b.toBuffer())) throw new Error('generated and hand-written codecs disagree');

  const iterations = 200_000;
  for (let i = 0; i < 3; i++) time(generated, iterations), time(handWritten, iterations); // warm-up
  // Interleaved rounds; the median per side resists noise from GC and frequency scaling.
  const gen: number[] = [];
  const hand: number[] = [];
  for (let round = 0; round < 9; round++) {
    gen.push(time(generated, iterations));
    hand.push(time(handWritten, iterations));
  }
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1] as number;
  const g = median(gen);
  const h = median(hand);
  const ratio = g / h;
  console.log(`encode+decode one struct: generated ${g.toFixed(0)} ns, hand-written ${h.toFixed(0)} ns`);
  console.log(`ratio generated/hand-written: ${ratio.toFixed(3)}x (target <= 1.2x) ${ratio <= 1.2 ? 'OK' : 'OVER TARGET'}`);
}

await main();
