// The kernel's `handshake` generic netlink family (net/handshake, Linux >= 6.4; the tlshd role):
// constants, and the ACCEPT / DONE exchange. See shared/reference/rpc-with-tls.md, last section.
import { closeSync } from 'node:fs';

import { type Attr, type GenlMessage, GenlSocket, NetlinkError } from './netlink.js';

export const HANDSHAKE_FAMILY = 'handshake';
export const HANDSHAKE_VERSION = 1;
export const HANDSHAKE_GROUP = 'tlshd';

export const HandshakeCmd = { READY: 1, ACCEPT: 2, DONE: 3 } as const;
export const HandlerClass = { NONE: 0, TLSHD: 1 } as const;
export const MsgType = { CLIENTHELLO: 1, SERVERHELLO: 2 } as const;
export const AuthMode = { UNAUTH: 1, PSK: 2, X509: 3 } as const;

export const AcceptAttr = {
  SOCKFD: 1,
  HANDLER_CLASS: 2,
  MESSAGE_TYPE: 3,
  TIMEOUT: 4,
  AUTH_MODE: 5,
  PEER_IDENTITY: 6,
  CERTIFICATE: 7,
  PEERNAME: 8,
  KEYRING: 9,
} as const;
export const X509Attr = { CERT: 1, PRIVKEY: 2 } as const;
export const DoneAttr = { STATUS: 1, SOCKFD: 2, REMOTE_AUTH: 3 } as const;

/** What the kernel asks for, from an ACCEPT reply. */
export interface HandshakeRequest {
  /** An fd for the kernel's socket, installed in this process (O_CLOEXEC). */
  sockfd: number;
  role: 'client' | 'server';
  /** 'unauth' | 'psk' | 'x509', or the number when unknown. */
  authMode: 'unauth' | 'psk' | 'x509' | number;
  /** Milliseconds, when the kernel gave a limit. */
  timeoutMs: number | undefined;
  /** The name the server certificate must match (client side), when the kernel passed one. */
  peername: string | undefined;
  /** PSK identities (key serials). */
  peerIdentities: number[];
  /** Certificate/private key pairs in the kernel keyring (key serials). */
  certificates: Array<{ cert: number | undefined; privkey: number | undefined }>;
  keyring: number | undefined;
}

const AUTH_NAMES: Readonly<Record<number, 'unauth' | 'psk' | 'x509'>> = { 1: 'unauth', 2: 'psk', 3: 'x509' };

export function parseAccept(message: GenlMessage): HandshakeRequest {
  const a = message.attrs;
  const sockfd = a.u32(AcceptAttr.SOCKFD);
  const type = a.u32(AcceptAttr.MESSAGE_TYPE);
  if (sockfd === undefined) throw new NetlinkError('ERR_NETLINK_MALFORMED', 'ACCEPT reply without sockfd');
  if (type !== MsgType.CLIENTHELLO && type !== MsgType.SERVERHELLO) {
    throw new NetlinkError('ERR_NETLINK_MALFORMED', `ACCEPT reply with unknown message-type ${String(type)}`);
  }
  const authMode = a.u32(AcceptAttr.AUTH_MODE) ?? 0;
  return {
    sockfd: sockfd | 0,
    role: type === MsgType.CLIENTHELLO ? 'client' : 'server',
    authMode: AUTH_NAMES[authMode] ?? authMode,
    timeoutMs: a.u32(AcceptAttr.TIMEOUT),
    peername: a.string(AcceptAttr.PEERNAME),
    peerIdentities: a.all(AcceptAttr.PEER_IDENTITY).map((b) => b.readUInt32LE(0)),
    certificates: a.nested(AcceptAttr.CERTIFICATE).map((c) => ({ cert: c.u32(X509Attr.CERT), privkey: c.u32(X509Attr.PRIVKEY) })),
    keyring: a.u32(AcceptAttr.KEYRING),
  };
}

/** The agent's side of the family: join the group, ACCEPT work, report DONE. */
export class HandshakeNetlink {
  readonly #genl: GenlSocket;
  #family = 0;

  private constructor(onReady: () => void, onError: (error: Error) => void) {
    this.#genl = new GenlSocket((message) => {
      if (message.family === this.#family && message.cmd === HandshakeCmd.READY) onReady();
    }, onError);
  }

  /** Resolves the family, joins `tlshd`. Throws ERR_NETLINK_NO_FAMILY on kernels without net/handshake. */
  static async open(onReady: () => void, onError: (error: Error) => void): Promise<HandshakeNetlink> {
    const self = new HandshakeNetlink(onReady, onError);
    try {
      const { id, groups } = await self.#genl.resolveFamily(HANDSHAKE_FAMILY);
      const group = groups.get(HANDSHAKE_GROUP);
      if (group === undefined) throw new NetlinkError('ERR_NETLINK_NO_FAMILY', `family "${HANDSHAKE_FAMILY}" has no multicast group "${HANDSHAKE_GROUP}"`);
      self.#family = id;
      self.#genl.join(group);
    } catch (error) {
      self.close();
      throw error;
    }
    return self;
  }

  /**
   * Asks for one pending request. Resolves null when there is none (EAGAIN: nothing queued, or
   * another agent took it). Needs CAP_NET_ADMIN (EPERM otherwise).
   */
  async accept(): Promise<HandshakeRequest | null> {
    let replies;
    try {
      replies = await this.#genl.request(this.#family, HandshakeCmd.ACCEPT, HANDSHAKE_VERSION, [
        { type: AcceptAttr.HANDLER_CLASS, value: { u32: HandlerClass.TLSHD } },
      ]);
    } catch (error) {
      if ((error as NetlinkError).errno === 11 || (error as NetlinkError).errno === 2) return null;
      throw error;
    }
    const reply = replies.find((m) => m.cmd === HandshakeCmd.ACCEPT) ?? replies[0];
    if (!reply) return null;
    try {
      return parseAccept(reply);
    } catch (error) {
      // The kernel already installed the fd in this process: answer the request and let the fd go.
      const sockfd = reply.attrs.u32(AcceptAttr.SOCKFD);
      if (sockfd !== undefined) {
        await this.done(sockfd, 22 /* EINVAL */).catch(() => undefined);
        try {
          closeSync(sockfd);
        } catch {
          // already gone
        }
      }
      throw error;
    }
  }

  /** Reports the outcome; `status` 0 or a positive errno. `remoteAuth`: peer identity key serials. */
  async done(sockfd: number, status: number, remoteAuth: readonly number[] = []): Promise<void> {
    const attrs: Attr[] = [
      { type: DoneAttr.STATUS, value: { u32: status } },
      { type: DoneAttr.SOCKFD, value: { u32: sockfd } },
      ...remoteAuth.map((serial) => ({ type: DoneAttr.REMOTE_AUTH, value: { u32: serial } })),
    ];
    await this.#genl.request(this.#family, HandshakeCmd.DONE, HANDSHAKE_VERSION, attrs);
  }

  close(): void {
    this.#genl.close();
  }
}
