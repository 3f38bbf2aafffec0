// The start-up kernel probe: the CTRL_CMD_GETPOLICY dump parsed from bytes laid out as Linux 6.12 sends
// them for the `handshake` family; the one log line on this host (no kernel TLS, no handshake family)
// and with stand-in sources for a kernel that has everything.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { HandshakeAgent, type LogEntry } from '../../src/agent/agent.js';
import { capabilitiesLine, probeKernel } from '../../src/agent/capabilities.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { AcceptAttr, DoneAttr, HandshakeCmd } from '../../src/agent/handshake-netlink.js';
import { type Attr, CtrlAttr, GENL_ID_CTRL, type GenlMessage, GenlSocket, NetlinkError, decodeDatagram, encodeGenl, parsePolicyDump } from '../../src/agent/netlink.js';
import { kernelTlsAvailable } from '../../src/tls/native.js';

const dir = mkdtempSync(join(tmpdir(), 'rpctls-caps-'));
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));

const NL_ATTR_TYPE_U32 = 4;
const NL_ATTR_TYPE_S32 = 8;

/** One message of a GETPOLICY dump, as the kernel builds it (ctrl_dumppolicy). */
function dumpMessage(attrs: Attr[]): GenlMessage {
  const [message] = decodeDatagram(encodeGenl(GENL_ID_CTRL, 0x2, 9, 10, 1, [{ type: CtrlAttr.FAMILY_ID, value: { u32: 0x1d } }, ...attrs]));
  return message as GenlMessage;
}
const policyEntry = (index: number, type: number, nlaType: number): GenlMessage =>
  dumpMessage([{ type: CtrlAttr.POLICY, value: { nested: [{ type: index, value: { nested: [{ type, value: { nested: [{ type: 1, value: { u32: nlaType } }] } }] } }] } }]);
const opPolicy = (op: number, doIndex: number): GenlMessage =>
  dumpMessage([{ type: CtrlAttr.OP_POLICY, value: { nested: [{ type: op, value: { nested: [{ type: 1, value: { u32: doIndex } }] } }] } }]);

/** Linux 6.12's handshake family: ACCEPT takes handler-class; DONE status, sockfd, remote-auth. */
function linuxPolicyDump(extraAccept: number[] = []): GenlMessage[] {
  return [
    opPolicy(HandshakeCmd.ACCEPT, 0),
    opPolicy(HandshakeCmd.DONE, 1),
    policyEntry(0, AcceptAttr.HANDLER_CLASS, NL_ATTR_TYPE_U32),
    ...extraAccept.map((type) => policyEntry(0, type, NL_ATTR_TYPE_U32)),
    policyEntry(1, DoneAttr.STATUS, NL_ATTR_TYPE_U32),
    policyEntry(1, DoneAttr.SOCKFD, NL_ATTR_TYPE_S32),
    policyEntry(1, DoneAttr.REMOTE_AUTH, NL_ATTR_TYPE_U32),
  ];
}

test('GETPOLICY dump: per command, the request attribute types and their netlink types', (t) => {
  const policy = parsePolicyDump(linuxPolicyDump());
  t.deepEqual(policy.ops.get(HandshakeCmd.ACCEPT), { do: [AcceptAttr.HANDLER_CLASS] });
  t.deepEqual(policy.ops.get(HandshakeCmd.DONE), { do: [DoneAttr.STATUS, DoneAttr.SOCKFD, DoneAttr.REMOTE_AUTH] });
  t.is(policy.policies.get(1)?.get(DoneAttr.SOCKFD), NL_ATTR_TYPE_S32);
  t.deepEqual(parsePolicyDump([]).ops.size, 0, 'an empty dump: no operations');
});

test('a real dump: this kernel\'s own nlctrl policy (GETFAMILY takes FAMILY_ID and FAMILY_NAME)', async (t) => {
  const socket = new GenlSocket(() => {}, () => {});
  try {
    const policy = await socket.policy('nlctrl');
    const getFamily = policy.ops.get(3);
    t.truthy(getFamily?.do?.includes(CtrlAttr.FAMILY_NAME), JSON.stringify([...policy.ops]));
    t.truthy(getFamily?.do?.includes(CtrlAttr.FAMILY_ID));
    const nameType = policy.policies.get([...policy.policies.keys()][0]!)?.get(CtrlAttr.FAMILY_NAME);
    t.is(nameType, 12, 'FAMILY_NAME is NL_ATTR_TYPE_NUL_STRING');
    await t.throwsAsync(socket.policy('no-such-family'), { code: 'ERR_NETLINK_NO_FAMILY' });
  } finally {
    socket.close();
  }
});

test('on this host: one line, tls and handshake as they are here, and no crash', async (t) => {
  const caps = await probeKernel();
  const here = kernelTlsAvailable();
  t.is(caps.tls, here.available);
  if (!here.available) {
    t.is(caps.rekey, false);
    t.is(caps.recordSizeLimit, 'no', 'no kernel TLS: no record size limit either');
    t.regex(caps.tlsReason ?? '', /^E[A-Z]+$/);
  }
  t.true(['yes', 'no'].includes(caps.handshake), `${caps.handshake}: ${String(caps.handshakeReason)}`);
  if (caps.handshake === 'no') {
    t.is(caps.keyringAttr, 'no');
    t.is(caps.handshakePolicy, null);
  } else {
    t.truthy(caps.handshakePolicy?.done?.includes(DoneAttr.STATUS), JSON.stringify(caps.handshakePolicy));
  }
  t.regex(capabilitiesLine(caps), /^kernel: tls=(yes|no) rekey=(yes|no) record_size_limit=(yes|no|unknown) handshake=(yes|no) keyring_attr=(yes|no|unknown)$/);
});

test('stand-in sources: every answer maps to its word (tls_stat rekey counters, getsockopt result, policy)', async (t) => {
  const stat = join(dir, 'tls_stat');
  writeFileSync(stat, 'TlsCurrTxSw                     \t0\nTlsRxRekeyOk                    \t0\nTlsTxRekeyOk\t0\n');
  const full = await probeKernel({
    kernelTls: () => ({ ulp: null, txMaxPayloadLen: 'ok' }),
    tlsStatPath: stat,
    handshakePolicy: async () => parsePolicyDump(linuxPolicyDump([AcceptAttr.KEYRING])),
  });
  t.is(capabilitiesLine(full), 'kernel: tls=yes rekey=yes record_size_limit=yes handshake=yes keyring_attr=yes');
  t.deepEqual(full.handshakePolicy, { accept: [AcceptAttr.HANDLER_CLASS, AcceptAttr.KEYRING], done: [1, 2, 3] });

  writeFileSync(stat, 'TlsCurrTxSw\t0\nTlsTxDevice\t0\n');
  const linux612 = await probeKernel({
    kernelTls: () => ({ ulp: null, txMaxPayloadLen: 'ENOPROTOOPT' }),
    tlsStatPath: stat,
    handshakePolicy: async () => parsePolicyDump(linuxPolicyDump()),
  });
  t.is(capabilitiesLine(linux612), 'kernel: tls=yes rekey=no record_size_limit=no handshake=yes keyring_attr=unknown',
    'a reply attribute is in no request policy: unknown, not no');

  const odd = await probeKernel({
    kernelTls: () => ({ ulp: 'ENOENT', txMaxPayloadLen: null }),
    tlsStatPath: join(dir, 'absent'),
    handshakePolicy: async () => {
      throw new NetlinkError('ERR_NETLINK_REQUEST', 'kernel answered EPERM', 1, 'EPERM');
    },
  });
  t.is(capabilitiesLine(odd), 'kernel: tls=no rekey=no record_size_limit=no handshake=unknown keyring_attr=unknown');
  t.is(odd.handshakeReason, 'EPERM');
});

test('the agent logs the line once at start, before it joins the family (so a kernel without it is named)', async (t) => {
  const logs: LogEntry[] = [];
  const config = parseAgentConfig('[debug]\nloglevel = 0\n', 'caps.conf');
  try {
    const agent = await HandshakeAgent.start({ config, log: (entry) => logs.push(entry) });
    await agent.close();
  } catch (error) {
    t.is((error as { code: string }).code, 'ERR_NETLINK_NO_FAMILY');
  }
  const lines = logs.filter((l) => l.msg.startsWith('kernel: '));
  t.is(lines.length, 1);
  t.regex(lines[0]!.msg, /^kernel: tls=(yes|no) rekey=(yes|no) record_size_limit=\w+ handshake=(yes|no) keyring_attr=\w+$/);
  if (!kernelTlsAvailable().available) t.regex(lines[0]!.msg, /tls=no rekey=no record_size_limit=no/);
  t.like(lines[0]!.kernel as object, { tls: kernelTlsAvailable().available });
});
