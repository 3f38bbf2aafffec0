import { InvalidOptionError } from '../errors.js';
import { PmapClient_v2, type Rpcb, RpcbClient_v3, RpcbClient_v4 } from '../generated/rpcbind.js';
import { RpcClient } from './client.js';
import type { CallOptions } from './connection.js';
import { ConnectError, RpcError } from './errors.js';
import { UdpClient } from './udp-client.js';

/**
 * rpcbind / portmapper (RFC 1833): program 100000. Version 2 is the portmapper (ports), versions 3 and 4
 * are rpcbind (universal addresses and netids).
 */
export const RPCBIND_PROGRAM = 100000;
export const RPCBIND_PORT = 111;
/** Where Linux's rpcbind listens for local (AF_UNIX) clients; registrations made there are trusted by uid. */
export const RPCBIND_SOCKET_PATHS = ['/run/rpcbind.sock', '/var/run/rpcbind.sock'];

export const PMAP_VERSION = 2;
export const PmapProc = { NULL: 0, SET: 1, UNSET: 2, GETPORT: 3, DUMP: 4, CALLIT: 5 } as const;
export const RpcbProc = { NULL: 0, SET: 1, UNSET: 2, GETADDR: 3, DUMP: 4, CALLIT: 5, GETTIME: 6 } as const;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** A portmapper (v2) mapping. */
export interface PmapMapping {
  program: number;
  version: number;
  protocol: number;
  port: number;
}

/** An rpcbind (v3/v4) entry: a universal address per netid. */
export interface RpcbEntry {
  program: number;
  version: number;
  netid: string;
  /** Universal address, e.g. "127.0.0.1.8.1" for port 2049. */
  address: string;
  owner: string;
}

/** The generated stubs walk `*next` lists iteratively; flatten them for callers. */
function flatten<N, T>(head: N | null, item: (node: N) => T, next: (node: N) => N | null): T[] {
  const out: T[] = [];
  for (let node = head; node !== null; node = next(node)) out.push(item(node));
  return out;
}

function fromRpcb(e: Rpcb): RpcbEntry {
  return { program: e.r_prog, version: e.r_vers, netid: e.r_netid, address: e.r_addr, owner: e.r_owner };
}

function toRpcb(e: Partial<RpcbEntry> & { program: number; version: number }): Rpcb {
  return { r_prog: e.program, r_vers: e.version, r_netid: e.netid ?? '', r_addr: e.address ?? '', r_owner: e.owner ?? '' };
}

/** Encodes a port as a universal address suffix, for IPv4 or IPv6 hosts (RFC 5665). */
export function toUniversalAddress(host: string, port: number): string {
  return `${host}.${port >> 8}.${port & 255}`;
}

/** Parses a universal address into host and port; null if it is not one. */
export function fromUniversalAddress(address: string): { host: string; port: number } | null {
  const match = /^(.*)\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (!match) return null;
  const hi = Number(match[2]);
  const lo = Number(match[3]);
  if (hi > 255 || lo > 255) return null;
  return { host: match[1] as string, port: hi * 256 + lo };
}

/**
 * Client for rpcbind: portmap v2 (NULL, SET, UNSET, GETPORT, DUMP) and rpcbind v3/v4 (SET, UNSET, GETADDR,
 * DUMP). Wraps an RpcClient or a UdpClient; `RpcbindClient.create()` makes one for host:111 (TCP or UDP)
 * or for the local socket.
 */
export class RpcbindClient {
  readonly client: RpcClient | UdpClient;

  constructor(client: RpcClient | UdpClient) {
    this.client = client;
  }

  /** TCP to host:111 (default 127.0.0.1), UDP with `udp`, or with `path` the AF_UNIX socket. */
  static create(options: { host?: string; port?: number; path?: string; timeout?: number; udp?: boolean } = {}): RpcbindClient {
    const timeout = options.timeout ?? 5000;
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? RPCBIND_PORT;
    if (options.path !== undefined) return new RpcbindClient(new RpcClient({ path: options.path, timeout }));
    return new RpcbindClient(options.udp ? new UdpClient({ host, port, timeout }) : new RpcClient({ host, port, timeout }));
  }

  close(): Promise<void> {
    return this.client.close();
  }

  private get v2(): PmapClient_v2<CallOptions> {
    return new PmapClient_v2<CallOptions>(this.client);
  }

  private rpcb(version: 3 | 4): RpcbClient_v3<CallOptions> | RpcbClient_v4<CallOptions> {
    return version === 3 ? new RpcbClient_v3<CallOptions>(this.client) : new RpcbClient_v4<CallOptions>(this.client);
  }

  async null(version = PMAP_VERSION, options?: CallOptions): Promise<void> {
    await this.client.call(RPCBIND_PROGRAM, version, 0, undefined, options);
  }

  // ---- portmap v2 --------------------------------------------------------------------------------

  pmapSet(m: PmapMapping, options?: CallOptions): Promise<boolean> {
    return this.v2.PMAPPROC_SET({ prog: m.program, vers: m.version, prot: m.protocol, port: m.port }, options);
  }

  pmapUnset(m: { program: number; version: number }, options?: CallOptions): Promise<boolean> {
    return this.v2.PMAPPROC_UNSET({ prog: m.program, vers: m.version, prot: 0, port: 0 }, options);
  }

  /** The TCP (default) or UDP port of a program version; 0 when not registered. */
  getPort(program: number, version: number, protocol = IPPROTO_TCP, options?: CallOptions): Promise<number> {
    return this.v2.PMAPPROC_GETPORT({ prog: program, vers: version, prot: protocol, port: 0 }, options);
  }

  async pmapDump(options?: CallOptions): Promise<PmapMapping[]> {
    const head = await this.v2.PMAPPROC_DUMP(options);
    return flatten(head, (n) => ({ program: n.map.prog, version: n.map.vers, protocol: n.map.prot, port: n.map.port }), (n) => n.next);
  }

  // ---- rpcbind v3/v4 -----------------------------------------------------------------------------

  set(entry: RpcbEntry, version: 3 | 4 = 4, options?: CallOptions): Promise<boolean> {
    return this.rpcb(version).RPCBPROC_SET(toRpcb(entry), options);
  }

  /** Removes a program version (for one netid, or all when `netid` is empty). */
  unset(entry: Partial<RpcbEntry> & { program: number; version: number }, version: 3 | 4 = 4, options?: CallOptions): Promise<boolean> {
    return this.rpcb(version).RPCBPROC_UNSET(toRpcb(entry), options);
  }

  /** The universal address of a program version on a netid ("" when not registered). */
  getAddr(program: number, version: number, netid = 'tcp', rpcbVersion: 3 | 4 = 4, options?: CallOptions): Promise<string> {
    return this.rpcb(rpcbVersion).RPCBPROC_GETADDR(toRpcb({ program, version, netid }), options);
  }

  async dump(rpcbVersion: 3 | 4 = 4, options?: CallOptions): Promise<RpcbEntry[]> {
    const head = await this.rpcb(rpcbVersion).RPCBPROC_DUMP(options);
    return flatten(head, (n) => fromRpcb(n.rpcb_map), (n) => n.rpcb_next);
  }
}

/** What a server registers: every (program, version) it serves, at one port. */
export interface Registration {
  programs: { program: number; version: number }[];
  port: number;
  /** The listening address family decides the netids: IPv4 -> tcp; IPv6 (dual stack) -> tcp and tcp6. */
  family: 'IPv4' | 'IPv6';
  /** Bound address; '0.0.0.0' / '::' register the wildcard. */
  address: string;
  /** Also served over UDP at the same port: registers netids udp (and udp6) too. */
  udp?: boolean;
}

/**
 * Registers with the local rpcbind, the way libtirpc's servers do: over its AF_UNIX socket with rpcbind v4
 * (rpcbind trusts the socket's peer uid), else over TCP to 127.0.0.1:111 with portmap v2 SET.
 */
export async function registerWithRpcbind(registration: Registration, options: { unset?: boolean; timeout?: number } = {}): Promise<void> {
  if (!Array.isArray(registration.programs)) throw new InvalidOptionError('registration.programs', 'an array', registration.programs);
  const owner = String(process.getuid?.() ?? 0);
  const entries: RpcbEntry[] = [];
  const transports = registration.udp ? (['tcp', 'udp'] as const) : (['tcp'] as const);
  for (const { program, version } of registration.programs) {
    const v4 = registration.family === 'IPv4' ? registration.address : '0.0.0.0';
    const v4Addr = v4 === '::' ? '0.0.0.0' : v4;
    for (const transport of transports) {
      entries.push({ program, version, netid: transport, address: toUniversalAddress(v4Addr, registration.port), owner });
      if (registration.family === 'IPv6') {
        entries.push({ program, version, netid: `${transport}6`, address: toUniversalAddress(registration.address, registration.port), owner });
      }
    }
  }
  const local = await openLocalRpcbind(options.timeout);
  if (local) {
    try {
      for (const entry of entries) {
        // Unset first so a stale entry from a crashed earlier run does not make SET fail.
        await local.unset({ program: entry.program, version: entry.version, netid: entry.netid });
        if (options.unset) continue;
        if (!(await local.set(entry))) {
          throw new RpcError('ERR_RPC_RPCBIND_REFUSED', `rpcbind refused to register program ${entry.program} version ${entry.version} (${entry.netid})`);
        }
      }
      return;
    } finally {
      await local.close();
    }
  }
  const remote = RpcbindClient.create({ timeout: options.timeout ?? 5000 });
  try {
    for (const { program, version } of registration.programs) {
      await remote.pmapUnset({ program, version }).catch((error: unknown) => {
        if (!(error instanceof ConnectError)) throw error;
        // Neither the local socket nor port 111 answered: say it is rpcbind that is missing.
        throw new ConnectError(error.address, error.port, error.cause, 'rpcbind');
      });
      if (options.unset) continue;
      for (const protocol of registration.udp ? [IPPROTO_TCP, IPPROTO_UDP] : [IPPROTO_TCP]) {
        const ok = await remote.pmapSet({ program, version, protocol, port: registration.port });
        if (!ok) throw new RpcError('ERR_RPC_RPCBIND_REFUSED', `rpcbind refused to register program ${program} version ${version}`);
      }
    }
  } finally {
    await remote.close();
  }
}

async function openLocalRpcbind(timeout = 5000): Promise<RpcbindClient | null> {
  for (const path of RPCBIND_SOCKET_PATHS) {
    const client = RpcbindClient.create({ path, timeout });
    try {
      await client.client.connect();
      return client;
    } catch {
      client.client.destroy();
    }
  }
  return null;
}
