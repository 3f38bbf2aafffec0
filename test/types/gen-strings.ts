/**
 * Type-level test (compiled by test/types/typecheck.test.ts, never run): generated code types each XDR
 * string by its mode. generated/strings.ts comes from generated/strings.x with filename and NOTE as
 * 'buffer', entry.note as 'utf8-strict', the rest 'utf8' (test/gen/regenerate.ts keeps it current).
 */
import { type Entry, type Filename, type LookupRes, StrClient_v1, type StrServer_v1 } from './generated/strings.js';

export const name: Filename = Buffer.from([0x61, 0xff, 0xfe]);
// @ts-expect-error filename is bytes: a string does not fit its type
export const text: Filename = 'a';

// The struct's own strings keep their modes: label 'utf8', note 'utf8-strict' (both JS strings).
export const entry: Entry = { name, label: 'label', note: 'note' };
// @ts-expect-error label is a string, not bytes
export const bytesLabel: Entry = { name, label: Buffer.alloc(0), note: '' };
// @ts-expect-error name (a filename) is bytes
export const textName: Entry = { name: 'a', label: '', note: '' };

// A union arm of the typedef is bytes; its own string arm is text.
export function length(res: LookupRes): number {
  return 'found' in res ? res.found.subarray(1).length : res.why.toUpperCase().length;
}

export async function calls(client: StrClient_v1): Promise<number> {
  const found = await client.LOOKUP(Buffer.from('f'));
  // @ts-expect-error LOOKUP takes a filename: bytes
  await client.LOOKUP('f');
  // NOTE is selected by procedure name: its string argument and result are bytes.
  const note: Buffer = await client.NOTE(Buffer.from([0xff]));
  // @ts-expect-error so a string argument does not compile
  await client.NOTE('text');
  return length(found) + note.length;
}

export const server: StrServer_v1 = {
  ECHO: (e) => ({ ...e, name: e.name.subarray(1) }),
  LOOKUP: (f) => ({ status: 0, found: f }),
  // @ts-expect-error the implementation must return bytes too
  NOTE: (s) => s.toString('latin1'),
};
