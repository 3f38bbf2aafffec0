// Record-marked bytes (RFC 5531 section 11) for tests that feed a RecordDecoder or write to a raw socket.
import { frameRecord } from '../../src/transport/record-marking.js';
import { XdrWriter } from '../../src/xdr/writer.js';

/** `payload` as one record, in fragments of at most `maxFragmentSize` bytes (framed by the library's own frameRecord). */
export function frame(payload: Buffer, maxFragmentSize: number): Buffer {
  const w = new XdrWriter();
  const slot = w.reserve4();
  w.raw(payload);
  return Buffer.concat(frameRecord(w.finish(), slot, maxFragmentSize));
}

/** `body` as one record in one final fragment, its mark written by hand (independent of the library). */
export function record(body: Buffer): Buffer {
  const mark = Buffer.alloc(4);
  mark.writeUInt32BE((0x80000000 | body.length) >>> 0);
  return Buffer.concat([mark, body]);
}
