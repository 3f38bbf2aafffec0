/**
 * Type-level test (compiled by test/types/typecheck.test.ts, never run): a server handler's argument and
 * result follow from its codecs, so a handler taking or returning the wrong type fails to compile.
 */
import { RpcClient, RpcServer, defineProgram, procedure, xdr, type Codec, type ProgramDefinition } from '../../src/index.js';

interface Point {
  x: number;
  y: number;
}
const point: Codec<Point> = xdr.struct<Point>({ x: xdr.int, y: xdr.int });

const server = new RpcServer();
server.addProgram({
  program: 0x20000001,
  version: 1,
  procedures: {
    // Inferred arguments are typed: `p` is a Point, `s` a string, `raw` a Buffer.
    1: { args: point, result: xdr.int, handler: (p) => p.x + p.y },
    2: { args: xdr.string(), result: xdr.uint, handler: async (s) => s.length },
    3: (raw) => raw.subarray(4),
    // @ts-expect-error a string handler for a struct codec
    4: { args: point, result: xdr.int, handler: (p: string) => p.length },
    // @ts-expect-error the result codec is an int, the handler returns a string
    5: { args: point, result: xdr.int, handler: (p) => `${p.x}` },
    // @ts-expect-error a property that Point does not have
    6: { args: point, result: xdr.int, handler: (p) => p.z },
    // @ts-expect-error a raw handler returns bytes, not a string
    7: () => 'not bytes',
  },
});

// The same check where a program is defined apart from its registration.
const defined: ProgramDefinition = defineProgram({
  program: 0x20000002,
  version: 1,
  procedures: {
    1: { args: xdr.string(), result: xdr.string(), handler: (s) => s.toUpperCase() },
    // @ts-expect-error a number handler for a string codec
    2: { args: xdr.string(), result: xdr.string(), handler: (n: number) => String(n) },
  },
});
server.addProgram(defined);
new RpcClient({ port: 1 }).addProgram(defined);

// The client side was already typed; kept here so a regression there shows too.
const ADD = procedure(0x20000001, 1, 1, point, xdr.int);
export async function sum(client: RpcClient): Promise<number> {
  // @ts-expect-error arguments of the wrong shape
  await client.request(ADD, { x: 1 });
  return client.request(ADD, { x: 1, y: 2 });
}
