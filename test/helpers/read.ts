// Reading a known number of bytes from a stream in tests (a raw socket, a TlsStream).
import type { Duplex } from 'node:stream';

/**
 * Resolves with the first `n` bytes the stream delivers and whatever came after them in the same
 * chunks (the excess), then pauses the stream and stops listening. Rejects if the stream ends or fails
 * first. Starts the stream flowing.
 */
export function readExactly(stream: Duplex, n: number): Promise<[Buffer, Buffer]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= n) {
        cleanup();
        stream.pause();
        const all = Buffer.concat(chunks);
        resolve([all.subarray(0, n), all.subarray(n)]);
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`stream ended after ${length} of ${n} bytes`));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
  });
}
