// A man in the middle for RPC-with-TLS tests that can forge TLS 1.3 records.
//
// ForgeRelay sits between a client and a server on loopback and forwards bytes. The plaintext part
// (the AUTH_TLS probe and its STARTTLS reply: RPC records) passes as it is; from the first TLS record
// on, it forwards whole TLS records only, so it can add records between them. Fed the session's
// keylog lines (the client's `keylog` option), it knows the traffic secrets, tells which forwarded
// records were protected with the application traffic keys (by trial decryption, so it also counts
// tickets and other post-handshake records correctly), and encrypts forged records with the next
// sequence number of that direction: the receiver sees genuine, authenticated alerts, tickets or
// KeyUpdates from its peer. After the first forgery in a direction, the relay re-encrypts each later
// record of the real peer with the receiver's sequence numbers, so the session goes on (a ticket flood
// between RPC replies, say); `hold()` stops a direction instead.
//
// TLS 1.3 record protection (RFC 8446 5.2) and HKDF-Expand-Label (7.1) are written out here rather
// than imported: the point is an independent implementation of what the addon and the kernel do.
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import net from 'node:net';

export type Direction = 'toServer' | 'toClient';

export const ContentType = { changeCipherSpec: 20, alert: 21, handshake: 22, applicationData: 23 } as const;
export const HandshakeType = { newSessionTicket: 4, keyUpdate: 24 } as const;

interface Suite {
  hash: 'sha256' | 'sha384';
  keyLength: number;
  cipher: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
}

const SUITES: Readonly<Record<number, Suite>> = {
  0x1301: { hash: 'sha256', keyLength: 16, cipher: 'aes-128-gcm' },
  0x1302: { hash: 'sha384', keyLength: 32, cipher: 'aes-256-gcm' },
  0x1303: { hash: 'sha256', keyLength: 32, cipher: 'chacha20-poly1305' },
};

const HASH_LENGTH = { sha256: 32, sha384: 48 } as const;

/** HKDF-Expand (RFC 5869 2.3). */
function hkdfExpand(hash: Suite['hash'], secret: Buffer, info: Buffer, length: number): Buffer {
  const blocks: Buffer[] = [];
  let previous = Buffer.alloc(0);
  for (let i = 1; Buffer.concat(blocks).length < length; i++) {
    previous = createHmac(hash, secret).update(Buffer.concat([previous, info, Buffer.from([i])])).digest();
    blocks.push(previous);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** HKDF-Expand-Label(secret, label, "", length) of TLS 1.3. */
export function expandLabel(hash: Suite['hash'], secret: Buffer, label: string, length: number): Buffer {
  const fullLabel = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, fullLabel.length]), fullLabel, Buffer.from([0])]);
  return hkdfExpand(hash, secret, info, length);
}

/** One direction's record protection keys, from a traffic secret. */
class TrafficKeys {
  readonly key: Buffer;
  readonly iv: Buffer;
  seq = 0n;

  constructor(
    readonly suite: Suite,
    readonly secret: Buffer,
  ) {
    this.key = expandLabel(suite.hash, secret, 'key', suite.keyLength);
    this.iv = expandLabel(suite.hash, secret, 'iv', 12);
  }

  /** The keys after a KeyUpdate (RFC 8446 7.2: "traffic upd"), sequence 0. */
  next(): TrafficKeys {
    return new TrafficKeys(this.suite, expandLabel(this.suite.hash, this.secret, 'traffic upd', HASH_LENGTH[this.suite.hash]));
  }

  #nonce(seq: bigint): Buffer {
    const nonce = Buffer.from(this.iv);
    for (let i = 0; i < 8; i++) nonce[11 - i]! ^= Number((seq >> BigInt(8 * i)) & 0xffn);
    return nonce;
  }

  /** The whole record (header included) for `content` of `type`, with the next sequence number. */
  seal(type: number, content: Buffer): Buffer {
    const inner = Buffer.concat([content, Buffer.from([type])]);
    const header = Buffer.from([ContentType.applicationData, 3, 3, (inner.length + 16) >> 8, (inner.length + 16) & 0xff]);
    // Typed as GCM; ChaCha20-Poly1305 has the same AEAD surface.
    const cipher = createCipheriv(this.suite.cipher as 'aes-128-gcm', this.key, this.#nonce(this.seq), { authTagLength: 16 });
    cipher.setAAD(header, { plaintextLength: inner.length });
    const body = Buffer.concat([cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
    this.seq++;
    return Buffer.concat([header, body]);
  }

  /** Decrypts a whole record at the current sequence number; advances it only on success. */
  open(record: Buffer): { type: number; content: Buffer } | null {
    if (record.length < 5 + 17) return null;
    const header = record.subarray(0, 5);
    const tag = record.subarray(record.length - 16);
    const decipher = createDecipheriv(this.suite.cipher as 'aes-128-gcm', this.key, this.#nonce(this.seq), { authTagLength: 16 });
    decipher.setAAD(header, { plaintextLength: record.length - 5 - 16 });
    decipher.setAuthTag(tag);
    let inner: Buffer;
    try {
      inner = Buffer.concat([decipher.update(record.subarray(5, record.length - 16)), decipher.final()]);
    } catch {
      return null;
    }
    this.seq++;
    let end = inner.length;
    while (end > 0 && inner[end - 1] === 0) end--;
    return { type: inner[end - 1]!, content: inner.subarray(0, end - 1) };
  }
}

/** A record as the relay saw it; `inner` is known for records it could decrypt. */
export interface SeenRecord {
  outerType: number;
  /** 'plain' (ServerHello, CCS, ClientHello), 'handshake' or 'application' traffic keys, or 'unknown'. */
  keys: 'plain' | 'handshake' | 'application' | 'unknown';
  innerType: number | null;
  content: Buffer | null;
}

class Side {
  buffer: Buffer = Buffer.alloc(0);
  /** Still in the plaintext RPC part (probe / STARTTLS reply). */
  plaintext = true;
  held = false;
  queue: Buffer[] = [];
  handshakeKeys: TrafficKeys | null = null;
  /** Decrypts what the real peer sent: its sequence numbers. */
  applicationKeys: TrafficKeys | null = null;
  /** After a forgery: encrypts toward the receiver, with the receiver's sequence numbers. */
  resealKeys: TrafficKeys | null = null;
  readonly seen: SeenRecord[] = [];
  /** Called after each forwarded TLS record. */
  readonly watchers = new Set<() => void>();

  constructor(
    readonly label: 'CLIENT' | 'SERVER',
    readonly out: net.Socket,
  ) {}
}

export class ForgeRelay {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #suite: Suite | null = null;
  readonly #secrets = new Map<string, Buffer>();
  #sides: Record<Direction, Side> | null = null;
  readonly #connected: Promise<void>;
  #resolveConnected!: () => void;
  /** Errors of the relay itself (not of the peers). */
  readonly errors: Error[] = [];

  private constructor(targetPort: number) {
    this.#connected = new Promise((resolve) => (this.#resolveConnected = resolve));
    this.#server = net.createServer((downstream) => {
      if (this.#sides) {
        downstream.destroy(); // one session per relay
        return;
      }
      const upstream = net.connect(targetPort, '127.0.0.1');
      this.#sockets.add(downstream).add(upstream);
      const sides = { toServer: new Side('CLIENT', upstream), toClient: new Side('SERVER', downstream) };
      this.#sides = sides;
      downstream.on('data', (chunk: Buffer) => this.#onData('toServer', chunk));
      upstream.on('data', (chunk: Buffer) => this.#onData('toClient', chunk));
      for (const socket of [downstream, upstream]) socket.on('error', () => {});
      downstream.once('close', () => upstream.destroy());
      upstream.once('close', () => downstream.destroy());
      upstream.once('connect', () => this.#resolveConnected());
    });
  }

  static async start(targetPort: number): Promise<ForgeRelay> {
    const relay = new ForgeRelay(targetPort);
    await new Promise<void>((resolve) => relay.#server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** Give it every keylog line of the session (the client's `keylog` option). */
  readonly keylog = (line: string): void => {
    const [label, , secret] = line.split(' ');
    if (label && secret) this.#secrets.set(label, Buffer.from(secret, 'hex'));
  };

  /** Records seen in one direction, classified. */
  seen(direction: Direction): readonly SeenRecord[] {
    return this.#side(direction).seen;
  }

  /** Number of records forwarded in `direction` under the application traffic keys. */
  applicationRecords(direction: Direction): number {
    return this.#side(direction).seen.filter((r) => r.keys === 'application').length;
  }

  /** Stops forwarding `direction`; what arrives meanwhile is queued (`release()` sends it on). */
  hold(direction: Direction): void {
    this.#side(direction).held = true;
  }

  release(direction: Direction): void {
    const side = this.#side(direction);
    side.held = false;
    const queued = side.queue;
    side.queue = [];
    for (const record of queued) this.#forward(side, record);
  }

  /**
   * Sends a forged record of `type` with `content` into `direction`, encrypted with that direction's
   * application traffic keys at the next sequence number. Call it after the handshake completed.
   * `corruptTag` flips a bit of the authentication tag (a record that cannot be authenticated).
   * `rotate`: this record completes a KeyUpdate, so what the relay sends on in this direction is sealed
   * with the next keys, as the receiver now expects (and the real peer's own KeyUpdates are followed).
   */
  inject(direction: Direction, type: number, content: Buffer, options: { corruptTag?: boolean; rotate?: boolean } = {}): Buffer {
    const side = this.#side(direction);
    const real = this.#applicationKeys(side);
    if (!real) throw new Error(`no ${side.label}_TRAFFIC_SECRET_0 yet: feed the keylog and wait for the handshake`);
    if (!side.resealKeys) {
      side.resealKeys = new TrafficKeys(real.suite, this.#secrets.get(`${side.label}_TRAFFIC_SECRET_0`)!);
      side.resealKeys.seq = real.seq;
    }
    const record = side.resealKeys.seal(type, content);
    if (options.rotate) side.resealKeys = side.resealKeys.next();
    // A flipped tag bit: the record is well framed but fails authentication at the receiver.
    if (options.corruptTag) record[record.length - 1]! ^= 0x01;
    side.out.write(record);
    return record;
  }

  /** A TLS alert record's content. */
  static alert(level: number, description: number): Buffer {
    return Buffer.from([level, description]);
  }

  /** A handshake message (type, 24-bit length, body). */
  static handshake(type: number, body: Buffer): Buffer {
    return Buffer.concat([Buffer.from([type, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  }

  /** A NewSessionTicket message with a throwaway ticket (RFC 8446 4.6.1). */
  static newSessionTicket(ticket = Buffer.alloc(32, 0x5a)): Buffer {
    const body = Buffer.alloc(4 + 4 + 1 + 8 + 2 + ticket.length + 2);
    let at = body.writeUInt32BE(7200, 0); // lifetime
    at = body.writeUInt32BE(0x01020304, at); // age_add
    at = body.writeUInt8(8, at);
    at += 8; // nonce
    at = body.writeUInt16BE(ticket.length, at);
    at += ticket.copy(body, at);
    body.writeUInt16BE(0, at); // no extensions
    return ForgeRelay.handshake(HandshakeType.newSessionTicket, body);
  }

  /** A KeyUpdate message; `requestUpdate` asks the receiver to update its sending key too. */
  static keyUpdate(requestUpdate = false): Buffer {
    return ForgeRelay.handshake(HandshakeType.keyUpdate, Buffer.from([requestUpdate ? 1 : 0]));
  }

  /** Resolves once `direction` has forwarded `count` application-key records (polls every record). */
  whenApplicationRecords(direction: Direction, count: number, timeoutMs = 20_000): Promise<void> {
    return this.#connected.then(
      () =>
        new Promise<void>((resolve, reject) => {
          const side = this.#side(direction);
          const check = (): void => {
            if (this.applicationRecords(direction) >= count) {
              side.watchers.delete(check);
              clearTimeout(timer);
              resolve();
            }
          };
          const timer = setTimeout(() => {
            side.watchers.delete(check);
            reject(new Error(`relay: ${direction} forwarded ${this.applicationRecords(direction)} of ${count} application records`));
          }, timeoutMs);
          side.watchers.add(check);
          check();
        }),
    );
  }

  /**
   * Ends the TCP stream toward `direction`'s receiver (a FIN) after what was forwarded so far, with no
   * close_notify: the receiver sees its peer stop mid-session. The other direction keeps flowing.
   */
  finish(direction: Direction): void {
    this.#side(direction).out.end();
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #side(direction: Direction): Side {
    if (!this.#sides) throw new Error('relay: no connection yet');
    return this.#sides[direction];
  }

  #onData(direction: Direction, chunk: Buffer): void {
    const side = this.#side(direction);
    side.buffer = side.buffer.length === 0 ? chunk : Buffer.concat([side.buffer, chunk]);
    for (;;) {
      if (side.plaintext) {
        // RPC records (probe, STARTTLS reply) until a TLS handshake record starts.
        if (side.buffer.length === 0) return;
        if (side.buffer[0] === ContentType.handshake) {
          side.plaintext = false;
          continue;
        }
        if (side.buffer.length < 4) return;
        const length = 4 + (side.buffer.readUInt32BE(0) & 0x7fffffff);
        if (side.buffer.length < length) return;
        side.out.write(side.buffer.subarray(0, length));
        side.buffer = side.buffer.subarray(length);
        continue;
      }
      if (side.buffer.length < 5) return;
      const length = 5 + side.buffer.readUInt16BE(3);
      if (side.buffer.length < length) return;
      const record = Buffer.from(side.buffer.subarray(0, length));
      side.buffer = side.buffer.subarray(length);
      if (side.held) side.queue.push(record);
      else this.#forward(side, record);
    }
  }

  #forward(side: Side, record: Buffer): void {
    const seen = this.#classify(side, record);
    side.seen.push(seen);
    if (side.resealKeys && seen.keys === 'application') side.out.write(side.resealKeys.seal(seen.innerType!, seen.content!));
    else side.out.write(record);
    // The real peer's own KeyUpdate (alone in its record, as OpenSSL and rpctls send it): both the keys
    // it sends with and the keys the receiver expects move on.
    if (seen.keys === 'application' && seen.innerType === ContentType.handshake && seen.content?.[0] === HandshakeType.keyUpdate) {
      side.applicationKeys = side.applicationKeys!.next();
      if (side.resealKeys) side.resealKeys = side.resealKeys.next();
    }
    for (const watcher of [...side.watchers]) watcher();
  }

  #classify(side: Side, record: Buffer): SeenRecord {
    const outerType = record[0]!;
    if (outerType !== ContentType.applicationData) {
      if (outerType === ContentType.handshake && record[5] === 2) this.#readServerHello(record);
      return { outerType, keys: 'plain', innerType: null, content: null };
    }
    side.handshakeKeys ??= this.#keys(`${side.label}_HANDSHAKE_TRAFFIC_SECRET`);
    const handshake = side.handshakeKeys?.open(record);
    if (handshake) return { outerType, keys: 'handshake', innerType: handshake.type, content: handshake.content };
    const application = this.#applicationKeys(side)?.open(record);
    if (application) return { outerType, keys: 'application', innerType: application.type, content: application.content };
    return { outerType, keys: 'unknown', innerType: null, content: null };
  }

  #applicationKeys(side: Side): TrafficKeys | null {
    side.applicationKeys ??= this.#keys(`${side.label}_TRAFFIC_SECRET_0`);
    return side.applicationKeys;
  }

  #keys(label: string): TrafficKeys | null {
    const secret = this.#secrets.get(label);
    if (!secret || !this.#suite) return null;
    if (secret.length !== HASH_LENGTH[this.#suite.hash]) throw new Error(`${label}: secret length ${secret.length}`);
    return new TrafficKeys(this.#suite, secret);
  }

  /** The cipher suite, from the ServerHello (legacy_version, random, session_id, cipher_suite). */
  #readServerHello(record: Buffer): void {
    const body = record.subarray(5 + 4);
    const sessionIdLength = body[34]!;
    const suite = body.readUInt16BE(35 + sessionIdLength);
    const found = SUITES[suite];
    if (!found) this.errors.push(new Error(`relay: unknown cipher suite 0x${suite.toString(16)}`));
    this.#suite = found ?? null;
  }
}
