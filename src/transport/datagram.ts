import dgram from 'node:dgram';
import { DatagramTooLargeError } from './errors.js';

/**
 * The one owner of a UDP socket, next to the record channel for byte streams: one datagram is one RPC
 * message (RFC 5531 section 11 applies to streams only), so there is no framing, reassembly or
 * backpressure here; only the size cap, counters and the socket's life. It knows nothing of RPC.
 */

/** libtirpc's UDPMSGSIZE: what its clients and servers use unless told otherwise. */
export const DEFAULT_MAX_DATAGRAM_SIZE = 8800;
/** The largest UDP payload over IPv4 (65535 - 8 - 20). */
export const MAX_DATAGRAM_SIZE = 65507;

/** Where the channel hands what it receives. */
export interface DatagramSink {
  /** One datagram no larger than maxDatagramSize, from `address`:`port`. */
  onDatagram(datagram: Buffer, address: string, port: number): void;
  /** A datagram larger than maxDatagramSize arrived; it is dropped, only its first bytes may be looked at. */
  onOversized(datagram: Buffer, address: string, port: number): void;
  /** The socket closed (`error`: why, when it failed). */
  onClose(error: Error | undefined): void;
}

export interface DatagramStats {
  datagramsReceived: number;
  datagramsSent: number;
  /** Received datagrams larger than maxDatagramSize, dropped unread. */
  oversizedDatagrams: number;
  /** Sends the socket reported failed (e.g. ICMP unreachable, ENOBUFS): the datagram is lost, as UDP allows. */
  sendErrors: number;
}

/** Total bytes of a gather list whose first 4 bytes are a record-mark slot, as one datagram. */
export function datagramLength(parts: readonly Buffer[]): number {
  let length = -4;
  for (let i = 0; i < parts.length; i++) length += (parts[i] as Buffer).length;
  return length;
}

export class DatagramChannel {
  readonly stats: DatagramStats = { datagramsReceived: 0, datagramsSent: 0, oversizedDatagrams: 0, sendErrors: 0 };
  readonly maxDatagramSize: number;
  private readonly socket: dgram.Socket;
  private readonly sink: DatagramSink;
  private closedFlag = false;

  constructor(socket: dgram.Socket, sink: DatagramSink, maxDatagramSize: number) {
    this.socket = socket;
    this.sink = sink;
    this.maxDatagramSize = maxDatagramSize;
    socket.on('message', this.onMessage);
    socket.on('error', this.onError);
    socket.on('close', () => this.finish(undefined));
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  address(): { address: string; family: string; port: number } {
    return this.socket.address();
  }

  /** Whether the socket keeps the event loop alive (dgram's ref()/unref()). */
  setRef(ref: boolean): void {
    if (this.closedFlag) return;
    if (ref) this.socket.ref();
    else this.socket.unref();
  }

  /**
   * Sends one message to `address`:`port`; `parts` is a gather list whose first 4 bytes are the record
   * mark's place (the writers are shared with the stream path), skipped here. `parts` is not modified, so
   * a client can send the same list again to retransmit. Throws DatagramTooLargeError past the cap.
   */
  send(parts: readonly Buffer[], port: number, address: string): void {
    if (this.closedFlag) return;
    const length = datagramLength(parts);
    if (length > this.maxDatagramSize) throw new DatagramTooLargeError(length, this.maxDatagramSize);
    const first = (parts[0] as Buffer).subarray(4);
    this.stats.datagramsSent++;
    if (parts.length === 1) this.socket.send(first, port, address, this.onSent);
    else this.socket.send([first, ...parts.slice(1)], port, address, this.onSent);
  }

  /** Sends a whole datagram as it is (a reply kept by a duplicate request cache). */
  sendDatagram(datagram: Buffer, port: number, address: string): void {
    if (this.closedFlag) return;
    this.stats.datagramsSent++;
    this.socket.send(datagram, port, address, this.onSent);
  }

  close(): Promise<void> {
    if (this.closedFlag) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.close(() => resolve());
    });
  }

  private readonly onMessage = (datagram: Buffer, rinfo: dgram.RemoteInfo): void => {
    this.stats.datagramsReceived++;
    // Node reads up to 64 KiB whatever the cap: larger than ours is dropped, never parsed (libtirpc's
    // fixed receive buffer truncates it instead, and the decode fails).
    if (datagram.length > this.maxDatagramSize) {
      this.stats.oversizedDatagrams++;
      this.sink.onOversized(datagram, rinfo.address, rinfo.port);
      return;
    }
    this.sink.onDatagram(datagram, rinfo.address, rinfo.port);
  };

  private readonly onSent = (error: Error | null): void => {
    if (error) this.stats.sendErrors++;
  };

  private readonly onError = (error: Error): void => {
    // A UDP socket has no peer to lose; an error here is the socket's own (bind, or a closed handle).
    this.finish(error);
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  };

  private finish(error: Error | undefined): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.sink.onClose(error);
  }
}
