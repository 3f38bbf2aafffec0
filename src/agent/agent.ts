// The handshake agent (the tlshd role): the kernel's own TCP sockets (the NFS client and server, NVMe
// over TCP) ask userspace, over the `handshake` netlink family, to run a TLS handshake and install
// kernel TLS on them. For each request: ACCEPT gives an fd for the socket; the native engine of
// src/tls runs the handshake on it on the event loop, installs TLS_TX and TLS_RX (kernel TLS is
// required: there is no userspace fallback for a socket the kernel owns), DONE reports the outcome,
// and the fd is closed; the kernel keeps the socket. These sockets never pass through the RPC layer.
import { EventEmitter } from 'node:events';
import { appendFileSync, closeSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';

import { RpctlsError } from '../errors.js';
import { TlsContext, type TlsContextOptions } from '../tls/context.js';
import { TlsKtlsError } from '../tls/errors.js';
import { loadNative, type NativeTlsInfo } from '../tls/native.js';
import { handshakeOnFd, type TlsSessionOptions } from '../tls/session.js';
import { capabilitiesLine, type KernelCapabilities, probeKernel, type ProbeSources } from './capabilities.js';
import type { AgentConfig } from './config.js';
import { type HandshakeRequest, HandshakeNetlink } from './handshake-netlink.js';
import { CONSUMER_KEYRINGS, certificatePem, kernelKeyring, keyDescription, type KeyringAccess, KeySpec, privateKeyPem, pskHash } from './keyring.js';
import type { NetlinkError } from './netlink.js';

/** DONE status values (positive errno), as tlshd uses them. */
export const DoneStatus = { OK: 0, EIO: 5, EACCES: 13, EINVAL: 22, EOPNOTSUPP: 95, ETIMEDOUT: 110, EKEYREJECTED: 129 } as const;

/**
 * remote-auth value for a verified client certificate, as tlshd (1.3+) reports it on the server side:
 * consumers (nfsd) only check that an identity is present to treat the session as mutually
 * authenticated. (0 would mean TLS_NO_PEERID.) A PSK session reports the PSK's own serial instead.
 */
export const PEER_ID_PLACEHOLDER = 0xffffffff;

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  [field: string]: unknown;
}

export interface HandshakeOutcome {
  role: 'client' | 'server';
  peer: string | null;
  peername: string | null;
  status: number;
  statusName: string;
  cipher: string | null;
  /** 'psk': the session stands on an external PSK from the kernel keyring. */
  authMode: 'tls' | 'mtls' | 'psk' | null;
  error: { code: string; message: string } | null;
  durationMs: number;
}

export interface AgentOptions {
  config: AgentConfig;
  /** Serve one handshake, then close (the CLI's --once). */
  once?: boolean;
  /** Default: JSON lines on stderr. */
  log?: (entry: LogEntry) => void;
  /** Handshakes in progress at most; more requests wait in the kernel's queue (default 128). */
  maxConcurrent?: number;
  /**
   * Where requests come from: the kernel's netlink family (default). Tests pass a stand-in that hands
   * out sockets of their own, to run the agent where the kernel has no net/handshake.
   */
  transport?: (onReady: () => void, onError: (error: Error) => void) => Promise<HandshakeTransport>;
  /** Where the start-up kernel probe looks (tests); default: this kernel. */
  probe?: ProbeSources;
  /** The kernel's keys (identities the upcall names by serial); tests pass an in-memory one. Default: this kernel's. */
  keyring?: KeyringAccess;
}

/** The kernel side of the exchange, as the agent uses it (HandshakeNetlink implements it). */
export interface HandshakeTransport {
  accept(): Promise<HandshakeRequest | null>;
  done(sockfd: number, status: number, remoteAuth?: readonly number[]): Promise<void>;
  close(): void;
}

const STATUS_NAMES: Readonly<Record<number, string>> = { 0: 'OK', 5: 'EIO', 13: 'EACCES', 22: 'EINVAL', 95: 'EOPNOTSUPP', 110: 'ETIMEDOUT', 129: 'EKEYREJECTED' };

function defaultLog(entry: LogEntry): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
}

/** The DONE status for a failed handshake, as tlshd maps them. */
function statusFor(error: { code: string; errnoName?: unknown }): number {
  switch (error.code) {
    case 'ERR_TLS_HANDSHAKE_TIMEOUT':
      return DoneStatus.ETIMEDOUT;
    case 'ERR_TLS_SYSCALL':
      // The peer went away mid-handshake: ETIMEDOUT asks the kernel to retry (tlshd does the same).
      return ['ECONNRESET', 'EPIPE', 'ENOTCONN'].includes(String(error.errnoName)) ? DoneStatus.ETIMEDOUT : DoneStatus.EACCES;
    case 'ERR_TLS_NO_HANDSHAKE':
      // Server side: the peer went away before its ClientHello (closed or reset); as above.
      return DoneStatus.ETIMEDOUT;
    case 'ERR_TLS_KTLS':
      return DoneStatus.EIO;
    case 'ERR_TLS_ALERT':
      // The server does not know our PSK identity: tlshd says EKEYREJECTED.
      return (error as { alertName?: unknown }).alertName === 'unknown_psk_identity' ? DoneStatus.EKEYREJECTED : DoneStatus.EACCES;
    default:
      return DoneStatus.EACCES;
  }
}

export class HandshakeAgent extends EventEmitter {
  #config: AgentConfig;
  /** TlsContext per side of #config (or the error building it gave), rebuilt after reload(). */
  readonly #contexts = new Map<string, TlsContext | Error>();
  readonly #log: (entry: LogEntry) => void;
  readonly #once: boolean;
  readonly #maxConcurrent: number;
  #netlink: HandshakeTransport | null = null;
  readonly #openTransport: NonNullable<AgentOptions['transport']>;
  readonly #inFlight = new Set<Promise<void>>();
  #draining = false;
  #drainAgain = false;
  #closing = false;
  #served = 0;
  #onceResult: Promise<HandshakeOutcome> | null = null;
  #capabilities: KernelCapabilities | null = null;
  #resolveOnce: ((outcome: HandshakeOutcome) => void) | null = null;
  readonly #keys: KeyringAccess;
  /** Upcall keyrings linked into the session keyring, by serial: handshakes using each. */
  readonly #linked = new Map<number, number>();

  private constructor(options: AgentOptions) {
    super();
    this.#config = options.config;
    this.#log = options.log ?? defaultLog;
    this.#once = options.once === true;
    this.#maxConcurrent = options.maxConcurrent ?? 128;
    this.#keys = options.keyring ?? kernelKeyring();
    this.#openTransport = options.transport ?? ((onReady, onError) => HandshakeNetlink.open(onReady, onError));
    if (this.#once) this.#onceResult = new Promise((resolve) => (this.#resolveOnce = resolve));
  }

  /** Joins the kernel's `tlshd` group and serves requests until close(). */
  static async start(options: AgentOptions): Promise<HandshakeAgent> {
    const agent = new HandshakeAgent(options);
    loadNative(); // fail here, not at the first request, when the addon is missing
    agent.#logConfig();
    agent.#linkConfiguredKeyrings();
    // Once, before joining: a kernel without the handshake family still gets the line that says so.
    const capabilities = await probeKernel(options.probe);
    agent.#capabilities = capabilities;
    agent.#log({ level: 'info', msg: capabilitiesLine(capabilities), kernel: capabilities });
    agent.#netlink = await agent.#openTransport(
      () => agent.#drain(),
      (error) => {
        agent.#log({ level: 'warn', msg: 'netlink error; asking for pending requests', error: error.message });
        agent.#drain();
      },
    );
    agent.#log({ level: 'info', msg: 'agent ready', handlerClass: 'tlshd', config: options.config.source });
    // Requests queued before we joined got their READY notification already: ask now.
    agent.#drain();
    return agent;
  }

  /** Only in --once mode: the outcome of the one handshake served. */
  get onceResult(): Promise<HandshakeOutcome> | null {
    return this.#onceResult;
  }

  /** What the kernel offered at start (see capabilities.ts). */
  get capabilities(): KernelCapabilities | null {
    return this.#capabilities;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** New handshakes use `config`; those in progress finish with the one they started with. */
  reload(config: AgentConfig): void {
    this.#config = config;
    this.#contexts.clear();
    this.#logConfig();
    this.#linkConfiguredKeyrings();
    this.#log({ level: 'info', msg: 'configuration reloaded', config: config.source });
  }

  /** Stops asking for work and waits for the handshakes in progress (each bounded by its timeout). */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#netlink?.close();
    this.#netlink = null;
    await Promise.allSettled([...this.#inFlight]);
    this.#log({ level: 'info', msg: 'agent stopped', served: this.#served });
  }

  #logConfig(): void {
    const c = this.#config;
    for (const item of c.unsupported) this.#emitLog({ level: 'warn', msg: 'tlshd configuration item not supported by rpctls agent (ignored)', item, config: c.source });
    for (const warning of c.warnings) this.#emitLog({ level: 'warn', msg: warning, config: c.source });
    this.#emitLog({
      level: 'debug',
      msg: 'configuration',
      client: c.client.files,
      server: c.server.files,
      keylog: c.keylogFile ?? null,
      handshakeTimeoutMs: c.handshakeTimeoutMs,
    });
  }

  /**
   * `[authenticate] keyrings` and the consumers' own keyrings, linked into the session keyring where
   * ServerHello PSKs are searched for (tlshd does this at each configuration load). A keyring that is
   * absent (no NVMe module loaded, a kernel without keyrings) is a debug line, as in tlshd.
   */
  #linkConfiguredKeyrings(): void {
    for (const name of [...new Set([...this.#config.keyrings, ...CONSUMER_KEYRINGS])]) {
      try {
        const serial = this.#keys.findKeyring(name);
        if (serial === null) {
          this.#emitLog({ level: CONSUMER_KEYRINGS.includes(name as never) ? 'debug' : 'warn', msg: 'keyring not found', keyring: name });
          continue;
        }
        this.#keys.link(serial, KeySpec.SESSION);
        this.#emitLog({ level: 'debug', msg: 'keyring linked into the session keyring', keyring: name, serial });
      } catch (error) {
        this.#emitLog({ level: CONSUMER_KEYRINGS.includes(name as never) ? 'debug' : 'warn', msg: 'cannot link keyring', keyring: name, error: (error as Error).message });
      }
    }
  }

  /** The upcall's keyring (HANDSHAKE_A_ACCEPT_KEYRING), in the session keyring while a handshake uses it. */
  #linkRequestKeyring(serial: number, base: Record<string, unknown>): boolean {
    const users = this.#linked.get(serial) ?? 0;
    if (users === 0) {
      try {
        this.#keys.link(serial, KeySpec.SESSION);
      } catch (error) {
        this.#emitLog({ level: 'debug', msg: 'cannot link the request keyring', ...base, keyring: serial, error: (error as Error).message });
        return false;
      }
    }
    this.#linked.set(serial, users + 1);
    return true;
  }

  #unlinkRequestKeyring(serial: number): void {
    const users = (this.#linked.get(serial) ?? 1) - 1;
    if (users > 0) {
      this.#linked.set(serial, users);
      return;
    }
    this.#linked.delete(serial);
    try {
      this.#keys.unlink(serial, KeySpec.SESSION);
    } catch {
      // gone with its consumer
    }
  }

  #emitLog(entry: LogEntry): void {
    if (entry.level === 'debug' && this.#config.logLevel < 1) return;
    this.#log(entry);
  }

  /** ACCEPTs until the kernel has nothing queued (or the concurrency cap is reached). */
  #drain(): void {
    if (this.#closing || !this.#netlink) return;
    if (this.#draining) {
      this.#drainAgain = true;
      return;
    }
    this.#draining = true;
    void (async () => {
      try {
        do {
          this.#drainAgain = false;
          while (!this.#closing && this.#netlink && this.#inFlight.size < this.#maxConcurrent) {
            if (this.#once && this.#served + this.#inFlight.size >= 1) return;
            let request: HandshakeRequest | null;
            try {
              request = await this.#netlink.accept();
            } catch (error) {
              this.#emitLog({ level: 'error', msg: 'ACCEPT failed', error: (error as Error).message, errno: (error as NetlinkError).errnoName });
              return;
            }
            if (!request) break;
            const job = this.#serve(request).finally(() => {
              this.#inFlight.delete(job);
              this.#drain(); // a slot is free: there may be queued requests
            });
            this.#inFlight.add(job);
          }
        } while (this.#drainAgain && !this.#closing);
      } finally {
        this.#draining = false;
      }
    })();
  }

  async #serve(request: HandshakeRequest): Promise<void> {
    const started = performance.now();
    const addon = loadNative() as ReturnType<typeof loadNative> & {
      peerAddress(fd: number): { address: string; port: number; family: string } | null;
    };
    const peerAddress = addon.peerAddress(request.sockfd);
    const peer = peerAddress ? (peerAddress.family === 'IPv6' ? `[${peerAddress.address}]:${peerAddress.port}` : `${peerAddress.address}:${peerAddress.port}`) : null;
    const config = this.#config;
    const base = { role: request.role, peer, peername: request.peername ?? null, authMode: request.authMode, timeoutMs: request.timeoutMs ?? null };
    this.#emitLog({ level: 'debug', msg: 'handshake request', ...base, sockfd: request.sockfd, certificates: request.certificates.length, peerIdentities: request.peerIdentities.length });

    let status: number;
    let info = null as NativeTlsInfo | null;
    let failure = null as { code: string; message: string } | null;
    const refuse = (code: string, message: string, why: number): void => {
      failure = { code, message };
      status = why;
    };
    const side = request.role === 'client' ? config.client : config.server;
    const linkedKeyring = request.keyring !== undefined && request.keyring !== 0 && this.#linkRequestKeyring(request.keyring, base) ? request.keyring : undefined;
    /** Peer identities for DONE: the PSK's serial (both sides know it by the same key), as tlshd. */
    let remoteAuth: number[] = [];
    /** For the log: which keyring identity this handshake presented (null: the configuration file's). */
    let keyringIdentity = null as { cert: number | null; privkey: number | null } | { psk: number } | null;
    const servername = request.role === 'client' ? (request.peername ?? peerAddress?.address) : undefined;
    const sessionOptions: TlsSessionOptions = {};
    if (servername) sessionOptions.servername = servername;
    if (request.timeoutMs !== undefined) sessionOptions.handshakeTimeout = request.timeoutMs;
    const attempt = async (context: TlsContext): Promise<void> => {
      try {
        // handshakeOnFd works on a duplicate (closed when done); DONE needs the kernel's fd still open.
        info = await handshakeOnFd(request.sockfd, context, sessionOptions);
        if (!info.offload.tx || !info.offload.rx) {
          throw new TlsKtlsError(`kernel TLS not installed: ${info.offload.reason ?? 'unknown reason'}`, {});
        }
        status = DoneStatus.OK;
        failure = null;
      } catch (error) {
        info = null;
        const e = error as Error & { code: string; errnoName?: unknown };
        failure = { code: e.code ?? 'ERR_AGENT', message: e.message };
        status = statusFor(e);
      }
    };
    try {
      if (request.authMode === 'psk' && request.role === 'server') {
        // As tlshd's server: the client's PSK identity names a key in the session keyring (where the
        // request's keyring, e.g. nvmet's, is linked for the handshake); no certificate is offered.
        await attempt(this.#context('server', false, true));
        const serial = (info as NativeTlsInfo | null)?.pskKeySerial;
        if (status! === DoneStatus.OK && typeof serial === 'number') {
          remoteAuth = [serial];
          keyringIdentity = { psk: serial };
        }
      } else if (request.authMode === 'psk') {
        if (request.peerIdentities.length === 0) refuse('ERR_AGENT_PSK', 'PSK ClientHello request without a PSK identity', DoneStatus.EIO);
        // tlshd offers one identity per handshake (GnuTLS offers one), trying the next while refused.
        for (const serial of request.peerIdentities) {
          const context = this.#pskContext(serial, base);
          if (!(context instanceof TlsContext)) {
            refuse('ERR_AGENT_PSK', context.message, DoneStatus.EIO);
            break;
          }
          keyringIdentity = { psk: serial };
          await attempt(context);
          if (status! === DoneStatus.OK) remoteAuth = [serial];
          if (status! !== DoneStatus.EACCES) break;
        }
      } else if (typeof request.authMode === 'number') {
        refuse('ERR_AGENT_UNSUPPORTED', `unknown auth-mode ${request.authMode}`, DoneStatus.EINVAL);
      } else {
        // An "unauth" ClientHello (xprtsec=tls) is anonymous: presenting the configured client
        // certificate would make the session mutual, which a tls-only export refuses (as tlshd does).
        const presentCert = request.role === 'server' || request.authMode === 'x509';
        const pair = presentCert ? request.certificates[0] : undefined;
        let context: TlsContext | Error;
        if (pair !== undefined && ((pair.cert ?? 0) !== 0 || (pair.privkey ?? 0) !== 0)) {
          // The kernel's identity (mount -o cert_serial=,privkey_serial=) replaces the file's for this handshake.
          context = this.#keyringContext(request.role, pair, base);
          keyringIdentity = { cert: pair.cert ?? null, privkey: pair.privkey ?? null };
        } else if (request.role === 'server' && side.cert === undefined) {
          context = new RpctlsError('ERR_AGENT_CONFIG', `no [authenticate.server] x509.certificate in ${config.source}`);
        } else {
          context = this.#context(request.role, presentCert);
        }
        if (!(context instanceof TlsContext)) refuse((context as Error & { code?: string }).code ?? 'ERR_AGENT', context.message, DoneStatus.EACCES);
        else await attempt(context);
      }
    } catch (error) {
      const e = error as Error & { code: string };
      failure = { code: e.code ?? 'ERR_AGENT', message: e.message };
      status = statusFor(e);
    } finally {
      if (linkedKeyring !== undefined) this.#unlinkRequestKeyring(linkedKeyring);
    }
    status ??= DoneStatus.EACCES;

    const verifiedClient = request.role === 'server' && info !== null && info.peerVerified && info.peerCertificate !== null;
    if (verifiedClient) remoteAuth = [PEER_ID_PLACEHOLDER];
    const verified = info as NativeTlsInfo | null;
    if (request.role === 'client' && status === DoneStatus.OK && request.authMode !== 'psk' && verified?.peerVerified && verified.peerCertificate) {
      remoteAuth = this.#serverIdentity(verified.peerCertificate, request.peername ?? peerAddress?.address ?? '', base);
    }
    try {
      await this.#netlink?.done(request.sockfd, status, status === DoneStatus.OK ? remoteAuth : []);
    } catch (error) {
      // The kernel gave up on the request meanwhile (its own timeout): nothing else to do.
      this.#emitLog({ level: 'warn', msg: 'DONE not taken by the kernel', ...base, error: (error as Error).message });
    }
    // Only our fd goes: the kernel keeps the socket (and closes it itself after a failure).
    try {
      closeSync(request.sockfd);
    } catch {
      // not ours any more
    }
    this.#served++;
    const outcome: HandshakeOutcome = {
      role: request.role,
      peer,
      peername: request.peername ?? null,
      status,
      statusName: STATUS_NAMES[status] ?? String(status),
      cipher: info?.cipher ?? null,
      authMode: info === null ? null : info.psk ? 'psk' : request.role === 'server' ? (verifiedClient ? 'mtls' : 'tls') : info.authMode,
      error: failure,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
    };
    const subject = info?.peerCertificate ? new X509Certificate(info.peerCertificate).subject.replace(/\n/g, ', ') : null;
    this.#log({
      level: status === DoneStatus.OK ? 'info' : 'warn',
      msg: status === DoneStatus.OK ? 'handshake done' : 'handshake failed',
      ...base,
      status: outcome.statusName,
      cipher: outcome.cipher,
      tlsAuthMode: outcome.authMode,
      peerCertificate: subject,
      keyringIdentity,
      offload: info?.offload ?? null,
      error: failure,
      ms: outcome.durationMs,
    });
    this.emit('handshake', outcome);
    if (this.#once) {
      this.#resolveOnce?.(outcome);
      this.#resolveOnce = null;
    }
  }

  /**
   * The TlsContext (one SSL_CTX) for a side of the current configuration, built at its first use and
   * dropped on reload. Handshakes already running keep the one they started with.
   */
  #context(role: 'client' | 'server', presentCert: boolean, keyringPsk = false): TlsContext {
    const key = `${role}:${presentCert}:${keyringPsk}`;
    const cached = this.#contexts.get(key);
    if (cached instanceof Error) throw cached;
    if (cached) return cached;
    const side = role === 'client' ? this.#config.client : this.#config.server;
    const options = this.#baseOptions(role);
    if (presentCert && side.cert !== undefined) options.cert = side.cert;
    if (presentCert && side.key !== undefined) options.key = side.key;
    if (keyringPsk) options.psk = { keyring: 'session' };
    let context: TlsContext | Error;
    try {
      context = new TlsContext(options, `[authenticate.${role}]`);
    } catch (error) {
      context = error as Error;
    }
    this.#contexts.set(key, context);
    if (context instanceof Error) throw context;
    return context;
  }

  /**
   * A context for one handshake with the identity the kernel named (tlshd: a DER certificate and a DER
   * private key, each from the keyring when its serial is given, else from the file). Key material is
   * wiped from our Buffers once OpenSSL holds it. An Error: why not (the handshake is refused).
   */
  /**
   * As tlshd's client: the verified server certificate goes into the user keyring as an `asymmetric` key
   * ("TLS x509 <peername>", DER) and DONE names it. Kernels without that key type
   * (CONFIG_ASYMMETRIC_KEY_TYPE) refuse it: then no peer identity, as tlshd reports none.
   */
  #serverIdentity(certificate: Buffer, peername: string, base: Record<string, unknown>): number[] {
    try {
      return [this.#keys.add('asymmetric', `TLS x509 ${peername}`, certificate, KeySpec.USER)];
    } catch (error) {
      this.#emitLog({ level: 'debug', msg: 'server certificate not added to the user keyring', ...base, error: (error as Error).message });
      return [];
    }
  }

  #keyringContext(role: 'client' | 'server', pair: { cert: number | undefined; privkey: number | undefined }, base: Record<string, unknown>): TlsContext | Error {
    const side = role === 'client' ? this.#config.client : this.#config.server;
    const options = this.#baseOptions(role);
    const wipe: Buffer[] = [];
    try {
      if ((pair.cert ?? 0) !== 0) {
        const der = this.#keys.read(pair.cert!);
        wipe.push(der);
        options.cert = certificatePem(der, pair.cert!);
      } else if (side.cert !== undefined) {
        options.cert = side.cert;
      }
      if ((pair.privkey ?? 0) !== 0) {
        const der = this.#keys.read(pair.privkey!);
        wipe.push(der);
        const pem = privateKeyPem(der, pair.privkey!);
        wipe.push(pem);
        options.key = pem;
      } else if (side.key !== undefined) {
        options.key = side.key;
      }
      const context = new TlsContext(options, `[authenticate.${role}] (keyring certificate ${pair.cert ?? 0}, private key ${pair.privkey ?? 0})`);
      this.#emitLog({ level: 'debug', msg: 'using the kernel keyring identity', ...base, cert: pair.cert ?? null, privkey: pair.privkey ?? null });
      return context;
    } catch (error) {
      return error as Error;
    } finally {
      for (const b of wipe) b.fill(0);
    }
  }

  /**
   * A PSK ClientHello context for one identity key, as tlshd: the key's description is the PSK
   * identity, its payload the raw key; an NVMe identity names its hash. An Error: why not.
   */
  #pskContext(serial: number, base: Record<string, unknown>): TlsContext | Error {
    let key: Buffer | undefined;
    try {
      const identity = keyDescription(this.#keys.describe(serial));
      const hash = pskHash(identity);
      if (hash === null) return new Error(`PSK key ${serial}: invalid NVMe identity ${JSON.stringify(identity)} (hash must be 01 or 02)`);
      key = this.#keys.read(serial);
      const options = this.#baseOptions('client');
      options.psk = { identity, key, hash: hash === 'SHA384' ? 'sha384' : 'sha256' };
      const context = new TlsContext(options, `PSK key ${serial}`);
      this.#emitLog({ level: 'debug', msg: 'using a PSK from the kernel keyring', ...base, serial, identity });
      return context;
    } catch (error) {
      return error as Error;
    } finally {
      key?.fill(0);
    }
  }

  #baseOptions(role: 'client' | 'server'): TlsContextOptions {
    const config = this.#config;
    const side = role === 'client' ? config.client : config.server;
    const options: TlsContextOptions = {
      role,
      rejectUnauthorized: true,
      // RFC 9289: a server requests client certificates; a verified one makes the session mutual.
      requestCert: role === 'server' && side.ca !== undefined,
      requireClientCert: false,
      // ALPN is the consumer's business (tlshd sends none; NVMe/TCP is not "sunrpc").
      alpn: 'off',
      // No userspace fallback for a socket the kernel owns.
      kernelTls: 'require',
      handshakeTimeout: config.handshakeTimeoutMs,
    };
    if (side.ca !== undefined) options.ca = side.ca;
    // Built per reload, so a replaced CRL file applies to the handshakes after SIGHUP.
    if (side.crl !== undefined) options.crl = side.crl;
    const keylogFile = config.keylogFile;
    if (keylogFile !== undefined) {
      options.keylog = (line) => {
        try {
          appendFileSync(keylogFile, `${line}\n`, { mode: 0o600 });
        } catch (error) {
          this.#emitLog({ level: 'warn', msg: 'cannot write the key log', file: keylogFile, error: (error as Error).message });
        }
      };
    }
    return options;
  }
}
