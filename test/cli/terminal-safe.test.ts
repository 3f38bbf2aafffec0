// Strings from the network are escaped before any command prints them.
import test from 'ava';

import { formatError, terminalSafe } from '../../src/cli/render.js';

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
