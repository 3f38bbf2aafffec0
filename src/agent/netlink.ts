// Generic netlink (RFC 3549, linux/netlink.h + linux/genetlink.h) message encoding and decoding, and a
// small request/notification client over the addon's NetlinkSocket. Only what the handshake agent
// needs: the nlctrl family lookup, attributes (u32, string, nested), error/ack replies.
import { RpctlsError } from '../errors.js';
import { loadNative } from '../tls/native.js';

export const NETLINK_GENERIC = 16;

export const NlmsgType = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;
export const NlmFlags = { REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, DUMP: 0x300 } as const;

/** The generic netlink controller (nlctrl). */
export const GENL_ID_CTRL = 0x10;
export const CtrlCmd = { GETFAMILY: 3, GETPOLICY: 10 } as const;
export const CtrlAttr = { FAMILY_ID: 1, FAMILY_NAME: 2, MCAST_GROUPS: 7, POLICY: 8, OP_POLICY: 9, OP: 10 } as const;
/** Inside CTRL_ATTR_OP_POLICY: which policy (index into CTRL_ATTR_POLICY) an operation's do/dump uses. */
export const CtrlAttrPolicy = { DO: 1, DUMP: 2 } as const;
/** Inside a policy entry (linux/netlink.h enum netlink_policy_type_attr). */
export const NlPolicyTypeAttr = { TYPE: 1 } as const;
export const CtrlAttrMcast = { NAME: 1, ID: 2 } as const;

const NLMSG_HDRLEN = 16;
const GENL_HDRLEN = 4;
const NLA_HDRLEN = 4;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = ~(0x8000 | 0x4000) & 0xffff;

const align4 = (n: number): number => (n + 3) & ~3;

/** A netlink attribute to encode: a u32, a NUL-terminated string, raw bytes, or nested attributes. */
export type AttrValue = { u32: number } | { string: string } | { bytes: Buffer } | { nested: Attr[] };
export interface Attr {
  type: number;
  value: AttrValue;
}

function attrPayload(value: AttrValue): Buffer {
  if ('u32' in value) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value.u32 >>> 0); // netlink attributes are in host order (little-endian on x86/arm)
    return b;
  }
  if ('string' in value) return Buffer.from(`${value.string}\0`, 'utf8');
  if ('bytes' in value) return value.bytes;
  return encodeAttrs(value.nested);
}

export function encodeAttrs(attrs: readonly Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const attr of attrs) {
    const payload = attrPayload(attr.value);
    const header = Buffer.alloc(NLA_HDRLEN);
    header.writeUInt16LE(NLA_HDRLEN + payload.length, 0);
    header.writeUInt16LE(attr.type | ('nested' in attr.value ? NLA_F_NESTED : 0), 2);
    parts.push(header, payload, Buffer.alloc(align4(payload.length) - payload.length));
  }
  return Buffer.concat(parts);
}

/** Decoded attributes: type -> every payload of that type, in order (some attributes repeat). */
export class Attrs {
  readonly #map = new Map<number, Buffer[]>();

  static decode(buf: Buffer): Attrs {
    const attrs = new Attrs();
    let at = 0;
    while (at + NLA_HDRLEN <= buf.length) {
      const length = buf.readUInt16LE(at);
      const type = buf.readUInt16LE(at + 2) & NLA_TYPE_MASK;
      if (length < NLA_HDRLEN || at + length > buf.length) throw new NetlinkError('ERR_NETLINK_MALFORMED', `attribute ${type} claims ${length} bytes at offset ${at} of ${buf.length}`);
      const list = attrs.#map.get(type) ?? [];
      list.push(buf.subarray(at + NLA_HDRLEN, at + length));
      attrs.#map.set(type, list);
      at += align4(length);
    }
    return attrs;
  }

  has(type: number): boolean {
    return this.#map.has(type);
  }

  /** The attribute types present, in first-seen order. */
  types(): number[] {
    return [...this.#map.keys()];
  }

  all(type: number): Buffer[] {
    return this.#map.get(type) ?? [];
  }

  u32(type: number): number | undefined {
    const b = this.#map.get(type)?.[0];
    if (b === undefined) return undefined;
    if (b.length < 4) throw new NetlinkError('ERR_NETLINK_MALFORMED', `attribute ${type}: ${b.length} bytes for a u32`);
    return b.readUInt32LE(0);
  }

  u16(type: number): number | undefined {
    const b = this.#map.get(type)?.[0];
    return b === undefined || b.length < 2 ? undefined : b.readUInt16LE(0);
  }

  string(type: number): string | undefined {
    const b = this.#map.get(type)?.[0];
    if (b === undefined) return undefined;
    const end = b.indexOf(0);
    return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
  }

  nested(type: number): Attrs[] {
    return this.all(type).map((b) => Attrs.decode(b));
  }
}

/** A netlink exchange failed: malformed message, kernel error answer, timeout, closed socket, syscall. */
export class NetlinkError extends RpctlsError {
  /** Positive errno the kernel answered with, when it did. */
  readonly errno: number | undefined;
  readonly errnoName: string | undefined;
  constructor(code: string, message: string, errno?: number, errnoName?: string) {
    super(code, message);
    this.errno = errno;
    this.errnoName = errnoName;
  }
}

export interface GenlMessage {
  /** nlmsg_type: the family id. */
  family: number;
  flags: number;
  seq: number;
  pid: number;
  cmd: number;
  version: number;
  attrs: Attrs;
}

export interface NetlinkAck {
  seq: number;
  /** 0 for an ack, else a negative errno. */
  error: number;
}

export function encodeGenl(family: number, flags: number, seq: number, cmd: number, version: number, attrs: readonly Attr[]): Buffer {
  const payload = encodeAttrs(attrs);
  const out = Buffer.alloc(NLMSG_HDRLEN + GENL_HDRLEN + payload.length);
  out.writeUInt32LE(out.length, 0);
  out.writeUInt16LE(family, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq >>> 0, 8);
  out.writeUInt32LE(0, 12); // to the kernel
  out.writeUInt8(cmd, 16);
  out.writeUInt8(version, 17);
  payload.copy(out, NLMSG_HDRLEN + GENL_HDRLEN);
  return out;
}

/** Splits one datagram into generic netlink messages and error/ack replies. */
export function decodeDatagram(buf: Buffer): Array<GenlMessage | NetlinkAck> {
  const out: Array<GenlMessage | NetlinkAck> = [];
  let at = 0;
  while (at + NLMSG_HDRLEN <= buf.length) {
    const length = buf.readUInt32LE(at);
    if (length < NLMSG_HDRLEN || at + length > buf.length) {
      throw new NetlinkError('ERR_NETLINK_MALFORMED', `netlink message claims ${length} bytes at offset ${at} of ${buf.length}`);
    }
    const type = buf.readUInt16LE(at + 4);
    const flags = buf.readUInt16LE(at + 6);
    const seq = buf.readUInt32LE(at + 8);
    const pid = buf.readUInt32LE(at + 12);
    const body = buf.subarray(at + NLMSG_HDRLEN, at + length);
    if (type === NlmsgType.ERROR) {
      if (body.length < 4) throw new NetlinkError('ERR_NETLINK_MALFORMED', 'NLMSG_ERROR without an error code');
      out.push({ seq, error: body.readInt32LE(0) });
    } else if (type === NlmsgType.DONE) {
      out.push({ seq, error: 0 });
    } else if (type >= 0x10) {
      if (body.length < GENL_HDRLEN) throw new NetlinkError('ERR_NETLINK_MALFORMED', 'generic netlink message without a genl header');
      out.push({ family: type, flags, seq, pid, cmd: body[0]!, version: body[1]!, attrs: Attrs.decode(body.subarray(GENL_HDRLEN)) });
    }
    at += align4(length);
  }
  return out;
}

const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 9: 'EBADF', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES', 16: 'EBUSY',
  19: 'ENODEV', 22: 'EINVAL', 95: 'EOPNOTSUPP', 110: 'ETIMEDOUT', 126: 'ENOKEY', 129: 'EKEYREJECTED',
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

interface Pending {
  resolve: (messages: GenlMessage[]) => void;
  reject: (error: Error) => void;
  messages: GenlMessage[];
  timer: NodeJS.Timeout;
}

interface NativeNetlinkSocket {
  send(buf: Buffer): true | { code: string; message: string; errno: number };
  addMembership(group: number): void;
  portId(): number;
  close(): void;
}

/**
 * A generic netlink socket: request() sends one message and resolves with the kernel's answer
 * (messages until the ack), with a timeout; unsolicited (multicast) messages go to `onNotification`.
 */
export class GenlSocket {
  readonly #socket: NativeNetlinkSocket;
  readonly #pending = new Map<number, Pending>();
  #seq = Math.floor(Math.random() * 0x7fffffff);
  #closed = false;

  constructor(
    private readonly onNotification: (message: GenlMessage) => void,
    private readonly onError: (error: Error) => void,
  ) {
    const addon = loadNative() as unknown as {
      NetlinkSocket: new (protocol: number, onmessage: (arg: Buffer | { code: string; message: string; errno: number }) => void) => NativeNetlinkSocket;
    };
    this.#socket = new addon.NetlinkSocket(NETLINK_GENERIC, this.#onDatagram);
  }

  readonly #onDatagram = (arg: Buffer | { code: string; message: string; errno: number }): void => {
    if (!Buffer.isBuffer(arg)) {
      // ENOBUFS: notifications were dropped; the agent recovers by asking for pending work.
      this.onError(new NetlinkError(arg.code, arg.message, arg.errno));
      return;
    }
    let messages;
    try {
      messages = decodeDatagram(arg);
    } catch (error) {
      this.onError(error as Error);
      return;
    }
    for (const message of messages) {
      const pending = this.#pending.get(message.seq);
      if ('error' in message) {
        if (!pending) continue;
        this.#pending.delete(message.seq);
        clearTimeout(pending.timer);
        if (message.error === 0) pending.resolve(pending.messages);
        else {
          const errno = -message.error;
          pending.reject(new NetlinkError('ERR_NETLINK_REQUEST', `kernel answered ${errnoName(errno)}`, errno, errnoName(errno)));
        }
      } else if (pending && message.seq !== 0) {
        pending.messages.push(message);
      } else {
        this.onNotification(message);
      }
    }
  };

  /**
   * Sends a request with NLM_F_ACK (and NLM_F_DUMP when `dump`); resolves with the reply messages once
   * the ack (or a dump's NLMSG_DONE) arrives.
   */
  request(family: number, cmd: number, version: number, attrs: readonly Attr[], timeoutMs = 5000, dump = false): Promise<GenlMessage[]> {
    if (this.#closed) return Promise.reject(new NetlinkError('ERR_NETLINK_CLOSED', 'netlink socket closed'));
    this.#seq = (this.#seq + 1) >>> 0 || 1;
    const seq = this.#seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        reject(new NetlinkError('ERR_NETLINK_TIMEOUT', `no netlink answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(seq, { resolve, reject, messages: [], timer });
      const flags = NlmFlags.REQUEST | NlmFlags.ACK | (dump ? NlmFlags.DUMP : 0);
      const sent = this.#socket.send(encodeGenl(family, flags, seq, cmd, version, attrs));
      if (sent !== true) {
        clearTimeout(timer);
        this.#pending.delete(seq);
        reject(new NetlinkError(sent.code, sent.message, sent.errno));
      }
    });
  }

  /** Family id and multicast group ids of a generic netlink family, from nlctrl. */
  async resolveFamily(name: string): Promise<{ id: number; groups: Map<string, number> }> {
    let replies;
    try {
      replies = await this.request(GENL_ID_CTRL, CtrlCmd.GETFAMILY, 1, [{ type: CtrlAttr.FAMILY_NAME, value: { string: name } }]);
    } catch (error) {
      if ((error as NetlinkError).errno === 2) {
        throw new NetlinkError('ERR_NETLINK_NO_FAMILY', `this kernel has no generic netlink family "${name}"`, 2, 'ENOENT');
      }
      throw error;
    }
    const reply = replies[0];
    const id = reply?.attrs.u16(CtrlAttr.FAMILY_ID);
    if (!reply || id === undefined) throw new NetlinkError('ERR_NETLINK_MALFORMED', `nlctrl reply for "${name}" has no family id`);
    const groups = new Map<string, number>();
    for (const list of reply.attrs.nested(CtrlAttr.MCAST_GROUPS)) {
      // MCAST_GROUPS is an array: each entry is itself a nest holding NAME and ID.
      for (let index = 1; list.has(index); index++) {
        for (const group of list.nested(index)) {
          const groupName = group.string(CtrlAttrMcast.NAME);
          const groupId = group.u32(CtrlAttrMcast.ID);
          if (groupName !== undefined && groupId !== undefined) groups.set(groupName, groupId);
        }
      }
    }
    return { id, groups };
  }

  /**
   * The request policies of a family (CTRL_CMD_GETPOLICY dump, Linux >= 5.10): for each operation, the
   * attribute types its request takes. Reply attributes are in no policy.
   */
  async policy(name: string): Promise<FamilyPolicy> {
    let replies;
    try {
      replies = await this.request(GENL_ID_CTRL, CtrlCmd.GETPOLICY, 1, [{ type: CtrlAttr.FAMILY_NAME, value: { string: name } }], 5000, true);
    } catch (error) {
      if ((error as NetlinkError).errno === 2) {
        throw new NetlinkError('ERR_NETLINK_NO_FAMILY', `this kernel has no generic netlink family "${name}"`, 2, 'ENOENT');
      }
      throw error;
    }
    return parsePolicyDump(replies);
  }

  join(group: number): void {
    this.#socket.addMembership(group);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
    for (const [seq, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new NetlinkError('ERR_NETLINK_CLOSED', 'netlink socket closed'));
      this.#pending.delete(seq);
    }
  }
}

/** A family's request policies: per operation (command), the attribute types of its do and dump requests. */
export interface FamilyPolicy {
  ops: Map<number, { do?: number[]; dump?: number[] }>;
  /** Policy index -> attribute type -> NL_ATTR_TYPE_* of that attribute. */
  policies: Map<number, Map<number, number>>;
}

/**
 * The messages of a CTRL_CMD_GETPOLICY dump: some carry CTRL_ATTR_POLICY (policy index -> attribute
 * type -> its description), others CTRL_ATTR_OP_POLICY (command -> DO/DUMP policy index).
 */
export function parsePolicyDump(messages: readonly GenlMessage[]): FamilyPolicy {
  const policies = new Map<number, Map<number, number>>();
  const opIndex = new Map<number, { do?: number; dump?: number }>();
  for (const message of messages) {
    for (const byIndex of message.attrs.nested(CtrlAttr.POLICY)) {
      for (const index of byIndex.types()) {
        const attrs = policies.get(index) ?? new Map<number, number>();
        policies.set(index, attrs);
        for (const byType of byIndex.nested(index)) {
          for (const type of byType.types()) {
            const description = byType.nested(type)[0];
            attrs.set(type, description?.u32(NlPolicyTypeAttr.TYPE) ?? 0);
          }
        }
      }
    }
    for (const byOp of message.attrs.nested(CtrlAttr.OP_POLICY)) {
      for (const op of byOp.types()) {
        const entry = byOp.nested(op)[0];
        if (!entry) continue;
        const known = opIndex.get(op) ?? {};
        const doIndex = entry.u32(CtrlAttrPolicy.DO);
        const dumpIndex = entry.u32(CtrlAttrPolicy.DUMP);
        if (doIndex !== undefined) known.do = doIndex;
        if (dumpIndex !== undefined) known.dump = dumpIndex;
        opIndex.set(op, known);
      }
    }
  }
  const ops = new Map<number, { do?: number[]; dump?: number[] }>();
  const typesOf = (index: number | undefined): number[] | undefined =>
    index === undefined ? undefined : [...(policies.get(index)?.keys() ?? [])].sort((a, b) => a - b);
  for (const [op, { do: d, dump }] of opIndex) {
    const entry: { do?: number[]; dump?: number[] } = {};
    const doTypes = typesOf(d);
    const dumpTypes = typesOf(dump);
    if (doTypes) entry.do = doTypes;
    if (dumpTypes) entry.dump = dumpTypes;
    ops.set(op, entry);
  }
  return { ops, policies };
}
