// What the running kernel offers the agent, probed once at start (tlshd 1.4 does the same) and logged
// in one line, so an operator reading the log knows which features a request can get:
// - tls: the TLS ULP attaches (tls.ko); without it every request is answered EIO.
// - rekey: kernel TLS can take new keys on a live socket (Linux >= 6.14): /proc/net/tls_stat has the
//   rekey counters (read after tls.ko is loaded).
// - record_size_limit: TLS_TX_MAX_PAYLOAD_LEN (RFC 8449, Linux >= 6.19), by getsockopt on a socket with
//   the TLS ULP attached; "no" without kernel TLS.
// - handshake: the `handshake` netlink family and its request policies (CTRL_CMD_GETPOLICY dump).
// - keyring_attr: HANDSHAKE_A_ACCEPT_KEYRING (Linux >= 6.17) is an attribute of ACCEPT *replies*, which
//   no request policy lists: "yes" only if a policy names it, "no" without the family, else "unknown".
import { readFileSync } from 'node:fs';

import { loadNative } from '../tls/native.js';
import { AcceptAttr, HANDSHAKE_FAMILY, HandshakeCmd } from './handshake-netlink.js';
import { type FamilyPolicy, GenlSocket, type NetlinkError } from './netlink.js';

export interface KernelCapabilities {
  tls: boolean;
  /** Why kernel TLS is unavailable (errno name), when it is. */
  tlsReason: string | null;
  rekey: boolean;
  recordSizeLimit: 'yes' | 'no' | 'unknown';
  /** The `handshake` family: present, absent, or unknown (the query failed: `handshakeReason`). */
  handshake: 'yes' | 'no' | 'unknown';
  handshakeReason: string | null;
  /** Request attribute types per handshake command name, from the policy dump. */
  handshakePolicy: Record<string, number[]> | null;
  keyringAttr: 'yes' | 'no' | 'unknown';
}

export interface ProbeSources {
  /** Default: the addon's probe (a loopback connection with the TLS ULP). */
  kernelTls?: () => { ulp: string | null; txMaxPayloadLen: string | null };
  /** Default: /proc/net/tls_stat. */
  tlsStatPath?: string;
  /** Default: a CTRL_CMD_GETPOLICY dump on a fresh generic netlink socket. */
  handshakePolicy?: () => Promise<FamilyPolicy>;
}

const COMMAND_NAMES: Readonly<Record<number, string>> = { [HandshakeCmd.ACCEPT]: 'accept', [HandshakeCmd.DONE]: 'done' };

async function defaultPolicy(): Promise<FamilyPolicy> {
  const socket = new GenlSocket(() => {}, () => {});
  try {
    return await socket.policy(HANDSHAKE_FAMILY);
  } finally {
    socket.close();
  }
}

export async function probeKernel(sources: ProbeSources = {}): Promise<KernelCapabilities> {
  const features = (sources.kernelTls ?? (() => (loadNative() as unknown as { kernelTlsFeatures(): { ulp: string | null; txMaxPayloadLen: string | null } }).kernelTlsFeatures()))();
  const tls = features.ulp === null;
  let rekey = false;
  if (tls) try {
    rekey = /^TlsRxRekeyOk\s/m.test(readFileSync(sources.tlsStatPath ?? '/proc/net/tls_stat', 'utf8'));
  } catch {
    // no tls.ko loaded: no counters, no kernel TLS to rekey
  }
  const recordSizeLimit = !tls ? 'no'
    : features.txMaxPayloadLen === 'ok' ? 'yes'
      : features.txMaxPayloadLen === 'ENOPROTOOPT' ? 'no' : 'unknown';
  let handshake: KernelCapabilities['handshake'] = 'unknown';
  let handshakeReason: string | null = null;
  let handshakePolicy: Record<string, number[]> | null = null;
  let keyringAttr: KernelCapabilities['keyringAttr'] = 'unknown';
  try {
    const policy = await (sources.handshakePolicy ?? defaultPolicy)();
    handshake = 'yes';
    handshakePolicy = {};
    for (const [op, { do: types }] of policy.ops) handshakePolicy[COMMAND_NAMES[op] ?? `cmd${op}`] = types ?? [];
    const accept = policy.ops.get(HandshakeCmd.ACCEPT)?.do ?? [];
    if (accept.includes(AcceptAttr.KEYRING)) keyringAttr = 'yes';
  } catch (error) {
    const e = error as NetlinkError;
    if (e.code === 'ERR_NETLINK_NO_FAMILY') {
      handshake = 'no';
      keyringAttr = 'no';
    } else {
      handshakeReason = e.errnoName ?? e.message;
    }
  }
  return { tls, tlsReason: features.ulp, rekey, recordSizeLimit, handshake, handshakeReason, handshakePolicy, keyringAttr };
}

/** The one line logged at start: `kernel: tls=no rekey=no record_size_limit=no handshake=no keyring_attr=no`. */
export function capabilitiesLine(c: KernelCapabilities): string {
  const yn = (b: boolean): string => (b ? 'yes' : 'no');
  return `kernel: tls=${yn(c.tls)} rekey=${yn(c.rekey)} record_size_limit=${c.recordSizeLimit} handshake=${c.handshake} keyring_attr=${c.keyringAttr}`;
}
