import { performance } from 'node:perf_hooks';
/**
 * The duplicate request cache of a UDP server. A client that hears no reply sends the same call again
 * (same XID); without this cache a non-idempotent procedure would run twice. An entry is keyed by the
 * client's address and port, the XID, program, version, procedure and a checksum of the arguments (a new
 * call that reuses an XID after a wrap is not mistaken for an old one). While the first copy runs, its
 * entry is in progress and copies are dropped (the client retransmits again later); once answered, copies
 * get the same reply bytes.
 *
 * Bounds: at most `maxEntries` answered entries (each holds one reply, at most maxDatagramSize bytes),
 * evicted oldest first, and none older than `ttlMs`. Entries in progress are never evicted: they are
 * bounded by the server's limit on calls handled at once.
 */

export interface DuplicateCacheStats {
  /** Retransmissions answered from the cache. */
  hits: number;
  /** Retransmissions dropped because the first copy was still running. */
  inProgressDrops: number;
  /** Answered entries removed to stay within the size, or expired. */
  evictions: number;
}

export class DuplicateEntry {
  /** The reply as sent; null while the call runs. */
  reply: Buffer | null = null;
  /** performance.now() when the reply was stored. */
  answeredAt = 0;
  constructor(readonly key: string) {}
}

/** FNV-1a over the arguments: cheap, and only has to tell apart calls that share everything else. */
export function argsChecksum(args: Buffer): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < args.length; i++) hash = Math.imul(hash ^ (args[i] as number), 0x01000193);
  return hash >>> 0;
}

export function duplicateKey(address: string, port: number, xid: number, program: number, version: number, procedure: number, args: Buffer): string {
  return `${address}|${port}|${xid}|${program}|${version}|${procedure}|${argsChecksum(args)}`;
}

export class DuplicateRequestCache {
  readonly stats: DuplicateCacheStats = { hits: 0, inProgressDrops: 0, evictions: 0 };
  /** Insertion order is arrival order: the oldest answered entries are found first. */
  private readonly entries = new Map<string, DuplicateEntry>();
  private answered = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * A new entry (run the call, then `complete` it), the reply to send again, or null when the first copy
   * is still running (drop this one).
   */
  begin(key: string, now: number): DuplicateEntry | Buffer | null {
    const found = this.entries.get(key);
    if (found !== undefined) {
      if (found.reply === null) {
        this.stats.inProgressDrops++;
        return null;
      }
      if (now - found.answeredAt <= this.ttlMs) {
        this.stats.hits++;
        return found.reply;
      }
      this.remove(found);
      this.stats.evictions++;
    }
    const entry = new DuplicateEntry(key);
    this.entries.set(key, entry);
    return entry;
  }

  complete(entry: DuplicateEntry, reply: Buffer, now: number): void {
    if (entry.reply !== null || this.entries.get(entry.key) !== entry) return;
    entry.reply = reply;
    entry.answeredAt = now;
    this.answered++;
    if (this.answered > this.maxEntries) this.evict(now);
  }

  clear(): void {
    this.entries.clear();
    this.answered = 0;
  }

  private remove(entry: DuplicateEntry): void {
    this.entries.delete(entry.key);
    if (entry.reply !== null) this.answered--;
  }

  /** Drops the oldest answered entries down to the size, and any expired ones met on the way. */
  private evict(now: number): void {
    for (const entry of this.entries.values()) {
      if (this.answered <= this.maxEntries && (entry.reply === null || now - entry.answeredAt <= this.ttlMs)) break;
      if (entry.reply === null) continue;
      this.remove(entry);
      this.stats.evictions++;
    }
  }
}
