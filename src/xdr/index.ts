/**
 * XDR (RFC 4506): the data representation every other layer speaks. This folder owns encoding and decoding
 * of values and nothing else: it knows no RPC messages, records or sockets.
 */
export { XdrWriter, GATHER_THRESHOLD } from './writer.js';
export { XdrReader } from './reader.js';
export * from './errors.js';
export * as xdr from './codec.js';
export type { Codec, UnionValue } from './codec.js';

import { XdrReader } from './reader.js';
import type { Codec } from './codec.js';

/** Decodes one value that must occupy the whole buffer. */
export function decode<T>(type: Codec<T>, buffer: Buffer, options?: { copy?: boolean }): T {
  const reader = new XdrReader(buffer, options);
  const value = type.decode(reader);
  reader.assertEnd();
  return value;
}
