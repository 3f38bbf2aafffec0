// Strings from the network are escaped before any command prints them.
import test from 'ava';

import { errorJson, formatError, terminalSafe } from '../../src/cli/render.js';
import { RecordTooLargeError } from '../../src/transport/errors.js';

test('terminalSafe escapes C0, DEL, C1, bidi overrides and backslash; leaves printable text alone', (t) => {
  t.is(terminalSafe('tcp6 superuser 127.0.0.1.8.1 ünïcode'), 'tcp6 superuser 127.0.0.1.8.1 ünïcode');
  t.is(terminalSafe('\x1b[2J\x07\r\n\t'), '\\x1b[2J\\x07\\x0d\\x0a\\x09');
  t.is(terminalSafe('\x7f\x9b'), '\\x7f\\x9b');
  t.is(terminalSafe('a\u202eb\u2066c'), 'a\\u202eb\\u2066c');
  t.is(terminalSafe('C:\\x1b'), 'C:\\\\x1b', 'a literal backslash cannot fake an escape');
});

test('formatError escapes the message, the wire values and the cause', (t) => {
  const error = Object.assign(new Error('peer said \x1b]0;title\x07'), { code: 'ERR_X', verifier: 'A\x1bB', cause: new Error('\x9b31m') });
  const out = formatError(error, { ok: String, bad: String, warn: String, dim: String, bold: String });
  t.false(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/.test(out));
  t.true(out.includes('peer said \\x1b]0;title\\x07'));
});

test('a peer that does not speak ONC-RPC: what it sent is escaped once, in the hint and in errorJson; not for a later record', (t) => {
  const plain = { ok: String, bad: String, warn: String, dim: String, bold: String };
  const head = Buffer.from('SSH-2.0-\x1b]0;x\x07\x9b\r\n', 'latin1');
  const wrapped = (firstRecord: boolean): Error =>
    Object.assign(new Error('the connection failed'), { code: 'ERR_RPC_CONNECTION_CLOSED', cause: new RecordTooLargeError(0x5353482d, 1 << 20, { head, firstRecord }) });
  const json = errorJson(wrapped(true));
  t.is(json.notOncRpc, true);
  t.is(json.peerSent, 'SSH-2.0-\\x1b]0;x\\x07\\x9b\\x0d\\x0a');
  const out = formatError(wrapped(true), plain);
  t.false(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/.test(out));
  t.true(out.includes('hint: the peer does not appear to speak ONC-RPC (an SSH server?): it sent "SSH-2.0-\\x1b]0;x\\x07\\x9b\\x0d\\x0a"'));
  t.false(out.includes('\\\\x'), 'not escaped twice');
  t.is(errorJson(wrapped(false)).notOncRpc, undefined, 'a record too large after others is no sign of a non-RPC peer');
  t.false(formatError(wrapped(false), plain).includes('ONC-RPC'));
});
