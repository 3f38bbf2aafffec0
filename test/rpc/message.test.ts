// decodeMessage on a record that lies inside a larger buffer (the record channel hands records over
// where they arrived, with no view of the whole record), and the shared AUTH_NONE object.
import test from 'ava';

import { InvalidOptionError } from '../../src/errors.js';
import { AUTH_NONE, authSys } from '../../src/rpc/auth.js';
import { MalformedMessageError } from '../../src/rpc/errors.js';
import { type RpcCall, decodeMessage, writeCallHeader } from '../../src/rpc/message.js';
import { XdrError, XdrReader, XdrWriter } from '../../src/xdr/index.js';

function callBytes(cred = AUTH_NONE, args = Buffer.from('arguments!!!')): Buffer {
  const w = new XdrWriter(128);
  writeCallHeader(w, 0x01020304, 100003, 3, 7, cred, AUTH_NONE);
  w.fixedOpaque(args, args.length);
  return Buffer.concat(w.finish());
}

test('a call decoded in place (start, end) equals the call decoded from its own buffer; its arguments are a view of the same memory', (t) => {
  const call = callBytes();
  const chunk = Buffer.concat([Buffer.alloc(13, 0xee), call, Buffer.alloc(7, 0xdd)]);
  const inPlace = decodeMessage(chunk, 13, 13 + call.length) as RpcCall;
  const alone = decodeMessage(call) as RpcCall;
  t.deepEqual({ ...inPlace, args: [...inPlace.args] }, { ...alone, args: [...alone.args] });
  t.is(inPlace.args.toString(), 'arguments!!!');
  t.is(inPlace.args.buffer, chunk.buffer, 'a view, not a copy');
  t.is(inPlace.args.byteOffset, chunk.byteOffset + 13 + call.length - 12);
});

test('bytes after `end` are not read: a call cut short there is malformed, whatever follows it', (t) => {
  const call = callBytes();
  const chunk = Buffer.concat([Buffer.alloc(8), call]);
  // Ends inside the verifier: the bytes after `end` would complete it.
  const error = t.throws(() => decodeMessage(chunk, 8, 8 + 36), { instanceOf: MalformedMessageError });
  const cause = error?.cause as XdrError;
  t.true(cause instanceof XdrError);
  // The offset counts from the message's first byte, as when the message is a buffer of its own.
  const alone = t.throws(() => decodeMessage(call.subarray(0, 36)), { instanceOf: MalformedMessageError });
  t.is(cause.offset, (alone?.cause as XdrError).offset);
  t.is(error?.message, alone?.message);
});

test('AUTH_NONE credentials and verifiers decode to the one frozen AUTH_NONE; other flavors to objects of their own', (t) => {
  const none = decodeMessage(callBytes()) as RpcCall;
  t.is(none.cred, AUTH_NONE);
  t.is(none.verf, AUTH_NONE);
  t.true(Object.isFrozen(none.cred));
  const sys = authSys({ uid: 1000, gid: 100, machinename: 'host' });
  const withSys = decodeMessage(callBytes(sys)) as RpcCall;
  t.is(withSys.cred.flavor, sys.flavor);
  t.deepEqual([...withSys.cred.body], [...sys.body]);
  t.is(withSys.verf, AUTH_NONE);
  t.not(withSys.cred, (decodeMessage(callBytes(sys)) as RpcCall).cred);
});

test('a range outside the buffer is refused before anything is read, not read as zeros', (t) => {
  const call = callBytes();
  for (const [start, end] of [[0, call.length + 4], [-4, call.length], [8, 4], [Number.NaN, call.length], [0.5, call.length]] as const) {
    const error = t.throws(() => decodeMessage(call, start, end), { instanceOf: InvalidOptionError }, `${start}..${end}`);
    t.is(error?.code, 'ERR_RPC_INVALID_OPTION');
  }
  t.throws(() => new XdrReader(call, { end: call.length + 1 }), { instanceOf: InvalidOptionError });
  t.is(new XdrReader(call, { offset: call.length }).remaining, 0);
});
