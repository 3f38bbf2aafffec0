// Kernel keyrings through the addon, on real keys: this host's kernel and the UML kernels (CONFIG_KEYS).
// A kernel built without keyrings answers every call ENOSYS, coded; that is asserted instead.
import { randomBytes } from 'node:crypto';

import test from 'ava';

import { addKey, findInProcKeys, keyDescription, KeyringError, KeySpec, kernelKeyring, keyType, pskHash } from '../../src/agent/keyring.js';

function keyringsAvailable(): boolean {
  try {
    kernelKeyring().search(KeySpec.SESSION, 'user', 'rpctls no such key');
    return true;
  } catch (error) {
    if ((error as KeyringError).errnoName === 'ENOSYS') return false;
    throw error;
  }
}
const available = keyringsAvailable();

test('read, describe and search a user key; the payload comes back byte for byte', (t) => {
  if (!available) {
    const error = t.throws(() => addKey('user', 'x', Buffer.from('y')), { instanceOf: KeyringError });
    t.is(error?.errnoName, 'ENOSYS');
    return;
  }
  const keys = kernelKeyring();
  const payload = randomBytes(48);
  const description = `rpctls test ${process.pid} ${Date.now()}`;
  const serial = addKey('user', description, payload, KeySpec.SESSION);
  try {
    t.true(serial > 0);
    const read = keys.read(serial);
    t.deepEqual(read, payload);
    const described = keys.describe(serial);
    t.regex(described, /^user;\d+;\d+;[0-9a-f]{8};/);
    t.is(keyType(described), 'user');
    t.is(keyDescription(described), description);
    t.is(keys.search(KeySpec.SESSION, 'user', description), serial);
    t.is(keys.search(KeySpec.SESSION, 'user', `${description} absent`), null);
  } finally {
    keys.unlink(serial, KeySpec.SESSION);
  }
  t.is(keys.search(KeySpec.SESSION, 'user', description), null, 'unlinked: no longer reachable');
});

test('a missing key is ENOKEY, coded, naming the operation and serial', (t) => {
  const error = t.throws(() => kernelKeyring().read(0x7ffffff0), { instanceOf: KeyringError });
  t.is(error?.code, 'ERR_KEYRING');
  t.is(error?.errnoName, available ? 'ENOKEY' : 'ENOSYS');
  t.is(error?.operation, 'KEYCTL_READ');
  t.regex(error?.message ?? '', /^KEYCTL_READ 2147483632: ENO(KEY|SYS)/);
});

test('a keyring links into the session keyring and is found by name, as [authenticate] keyrings needs', (t) => {
  if (!available) return t.pass('no keyrings in this kernel: covered by the ENOSYS assertions');
  const keys = kernelKeyring();
  const name = `rpctls-ring-${process.pid}`;
  // A keyring in the process keyring, not reachable from the session keyring until linked.
  const ring = addKey('keyring', name, Buffer.alloc(0), KeySpec.PROCESS);
  const inner = addKey('user', `${name} inner`, Buffer.from('x'), ring);
  try {
    t.is(keys.search(KeySpec.SESSION, 'user', `${name} inner`), null, 'not linked yet');
    t.is(keys.findKeyring(name), ring, '/proc/keys names it');
    keys.link(ring, KeySpec.SESSION);
    t.is(keys.search(KeySpec.SESSION, 'user', `${name} inner`), inner, 'reachable once linked');
    keys.unlink(ring, KeySpec.SESSION);
    t.is(keys.search(KeySpec.SESSION, 'user', `${name} inner`), null, 'and not after unlinking');
  } finally {
    keys.unlink(ring, KeySpec.PROCESS);
  }
});

test('/proc/keys lines and NVMe PSK identities parse as tlshd reads them', (t) => {
  const text = [
    '03e454c8 I------     1 perm 0f0b0000     0     0 keyring   .blacklist: empty',
    '1c91c599 I------     1 perm 1f030000     0     0 keyring   .nvme: 2',
    '2a000001 I--Q---     1 perm 3f010000     0     0 user      .nvme: 6',
  ].join('\n');
  t.is(findInProcKeys(text, 'keyring', '.nvme'), 0x1c91c599);
  t.is(findInProcKeys(text, 'keyring', '.nfs'), null);
  t.is(keyDescription('psk;0;0;3f010000;NVMe0R01 nqn.host nqn.subsys'), 'NVMe0R01 nqn.host nqn.subsys');
  t.is(pskHash('NVMe0R01 nqn.host nqn.subsys'), 'SHA256');
  t.is(pskHash('NVMe1G02 nqn.host nqn.subsys'), 'SHA384');
  t.is(pskHash('NVMe0R03 nqn.host nqn.subsys'), null, 'a hash number other than 01/02 is an invalid identity');
  t.is(pskHash('rpctls client'), 'SHA256', 'other identities: SHA-256');
});
