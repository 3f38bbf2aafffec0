import type { Duplex } from 'node:stream';

/**
 * What the record channel needs to know of a Node stream beyond the Duplex interface: how to stop libuv
 * reading a socket before its fd changes hands, how many written bytes the kernel has not taken yet, and
 * when everything written so far has left.
 */

/**
 * Stops libuv from reading a socket's fd: `pause()` alone only stops delivery, and libuv would go on
 * reading (into the socket's buffer) the first bytes meant for whoever takes the fd over next.
 */
export function stopReadingHandle(stream: Duplex): void {
  const handle = (stream as unknown as { _handle?: { reading?: boolean; readStop?: () => number } })._handle;
  if (handle?.readStop !== undefined && handle.reading !== false) {
    handle.reading = false;
    handle.readStop();
  }
}

/**
 * Bytes not yet taken by the kernel. A socket's writableLength keeps a chunk whole until libuv wrote all
 * of it; the handle's writeQueueSize shrinks as the kernel takes parts, so a slow reader counts as progress.
 */
export function unsentBytes(stream: Duplex): number {
  const queued = (stream as unknown as { _handle?: { writeQueueSize?: number } })._handle?.writeQueueSize;
  return stream.writableLength + (typeof queued === 'number' ? queued : 0);
}

/** Resolves once everything written so far has been handed to the stream's underlying resource. */
export function flushed(stream: Duplex): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.writableLength === 0) {
      resolve();
      return;
    }
    stream.write(EMPTY, (error) => (error ? reject(error) : resolve()));
  });
}

const EMPTY = Buffer.alloc(0);
