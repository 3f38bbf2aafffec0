// The few NFS procedures the interop scenarios call, with codecs written here on rpctls's XDR reader
// and writer: NFSv3 LOOKUP and READ (RFC 1813) and an NFSv4.0 COMPOUND of PUTROOTFH, PUTFH, LOOKUP,
// GETFH and READ (RFC 7530). A status other than OK becomes an NfsError with a stable code
// (ERR_NFS3ERR_ACCES, ERR_NFS4ERR_WRONGSEC, ...) and the wire value.
import { XdrReader, XdrWriter } from '../../dist/index.js';

export const NFS_PROGRAM = 100003;
const NFS3_FHSIZE = 64;
const NFS4_FHSIZE = 128;

const NFS3_NAMES = { 0: 'NFS3_OK', 1: 'NFS3ERR_PERM', 2: 'NFS3ERR_NOENT', 5: 'NFS3ERR_IO', 13: 'NFS3ERR_ACCES', 20: 'NFS3ERR_NOTDIR', 22: 'NFS3ERR_INVAL', 70: 'NFS3ERR_STALE', 10001: 'NFS3ERR_BADHANDLE', 10006: 'NFS3ERR_SERVERFAULT', 10008: 'NFS3ERR_JUKEBOX' };
const NFS4_NAMES = { 0: 'NFS4_OK', 1: 'NFS4ERR_PERM', 2: 'NFS4ERR_NOENT', 5: 'NFS4ERR_IO', 13: 'NFS4ERR_ACCESS', 10001: 'NFS4ERR_BADHANDLE', 10006: 'NFS4ERR_SERVERFAULT', 10013: 'NFS4ERR_GRACE', 10016: 'NFS4ERR_WRONGSEC', 10020: 'NFS4ERR_NOFILEHANDLE', 10021: 'NFS4ERR_MINOR_VERS_MISMATCH', 10025: 'NFS4ERR_BAD_STATEID', 10038: 'NFS4ERR_OP_ILLEGAL' };

export class NfsError extends Error {
  constructor(version, status, operation) {
    const name = (version === 3 ? NFS3_NAMES : NFS4_NAMES)[status] ?? `status ${status}`;
    super(`NFSv${version} ${operation} failed: ${name} (${status})`);
    this.code = `ERR_${name.startsWith('NFS') ? name : `NFS${version}_${status}`}`;
    this.status = status;
    this.operation = operation;
  }
}

// ---- NFSv3 ---------------------------------------------------------------------------------------

/** fattr3 (84 bytes); only type and size are of interest here. */
function decodeFattr3(r) {
  const type = r.uint();
  r.fixedOpaque(16); // mode nlink uid gid
  const size = r.uhyper();
  r.fixedOpaque(56); // used rdev fsid fileid atime mtime ctime
  return { type, size };
}
function postOpAttr(r) {
  return r.bool() ? decodeFattr3(r) : null;
}

/** LOOKUP (procedure 3): the file handle of `name` in directory `dir`. */
export async function lookup3(client, dir, name, options) {
  const w = new XdrWriter();
  w.opaque(dir, NFS3_FHSIZE).string(name, 255);
  const r = new XdrReader(await client.call(NFS_PROGRAM, 3, 3, w.finish(), options));
  const status = r.uint();
  if (status !== 0) throw new NfsError(3, status, `LOOKUP ${name}`);
  const fh = Buffer.from(r.opaque(NFS3_FHSIZE));
  const attributes = postOpAttr(r);
  postOpAttr(r);
  r.assertEnd();
  return { fh, attributes };
}

/** READ (procedure 6). */
export async function read3(client, fh, offset, count, options) {
  const w = new XdrWriter();
  w.opaque(fh, NFS3_FHSIZE).uhyper(BigInt(offset)).uint(count);
  const r = new XdrReader(await client.call(NFS_PROGRAM, 3, 6, w.finish(), options));
  const status = r.uint();
  postOpAttr(r);
  if (status !== 0) throw new NfsError(3, status, 'READ');
  r.uint(); // count
  const eof = r.bool();
  const data = Buffer.from(r.opaque());
  r.assertEnd();
  return { eof, data };
}

// ---- NFSv4.0 COMPOUND ----------------------------------------------------------------------------

const OP = { GETFH: 10, LOOKUP: 15, PUTFH: 22, PUTROOTFH: 24, READ: 25 };
const OP_NAMES = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k]));
/** The READ bypass stateid (all ones): reads without OPEN state, allowed during the grace period too. */
const BYPASS_STATEID = { seqid: 0xffffffff, other: Buffer.alloc(12, 0xff) };

export const ops = {
  putrootfh: () => ({ op: OP.PUTROOTFH }),
  putfh: (fh) => ({ op: OP.PUTFH, fh }),
  lookup: (name) => ({ op: OP.LOOKUP, name }),
  getfh: () => ({ op: OP.GETFH }),
  read: (offset, count) => ({ op: OP.READ, offset, count }),
};

function encodeOp(w, o) {
  w.uint(o.op);
  switch (o.op) {
    case OP.PUTFH: w.opaque(o.fh, NFS4_FHSIZE); break;
    case OP.LOOKUP: w.string(o.name); break;
    case OP.READ:
      w.uint(BYPASS_STATEID.seqid).fixedOpaque(BYPASS_STATEID.other, 12).uhyper(BigInt(o.offset)).uint(o.count);
      break;
    default: break; // PUTROOTFH, GETFH: no arguments
  }
}

/**
 * COMPOUND (procedure 1, minor version 0). Resolves with one result per operation; rejects with an
 * NfsError naming the first operation that failed.
 */
export async function compound4(client, operations, options) {
  const w = new XdrWriter();
  // A tag of a multiple of 4 bytes: nfsd 6.12 echoes the tag without zeroing its XDR padding (a 14-byte
  // tag came back followed by 2 stray bytes), which a strict XDR reader rightly rejects.
  w.string('rpctls interop 4').uint(0).uint(operations.length);
  for (const o of operations) encodeOp(w, o);
  const reply = await client.call(NFS_PROGRAM, 4, 1, w.finish(), options);
  try {
    return decodeCompound(reply);
  } catch (error) {
    if (!(error instanceof NfsError)) error.message += ` (COMPOUND reply, ${reply.length} bytes: ${reply.subarray(0, 48).toString('hex')})`;
    throw error;
  }
}

function decodeCompound(reply) {
  const r = new XdrReader(reply);
  const status = r.uint();
  r.opaque(); // tag
  const count = r.uint();
  const results = [];
  for (let i = 0; i < count; i++) {
    const op = r.uint();
    const opStatus = r.uint();
    if (opStatus !== 0) throw new NfsError(4, opStatus, OP_NAMES[op] ?? `op ${op}`);
    if (op === OP.GETFH) results.push({ op: 'GETFH', fh: Buffer.from(r.opaque(NFS4_FHSIZE)) });
    else if (op === OP.READ) {
      const eof = r.bool();
      results.push({ op: 'READ', eof, data: Buffer.from(r.opaque()) });
    } else results.push({ op: OP_NAMES[op] ?? String(op) });
  }
  if (status !== 0) throw new NfsError(4, status, 'COMPOUND');
  r.assertEnd();
  return results;
}

/**
 * Reads `size` bytes with `read(offset, count) -> { data }`: all chunks in flight at once on the one
 * connection, then any short reply (the server's maximum READ size may be smaller) completed in turn.
 */
export async function readAll(read, size, chunk) {
  const ranges = [];
  for (let offset = 0; offset < size; offset += chunk) ranges.push([offset, Math.min(chunk, size - offset)]);
  const first = await Promise.all(ranges.map(([offset, count]) => read(offset, count)));
  const pieces = [];
  let calls = ranges.length;
  let largest = 0;
  for (let i = 0; i < ranges.length; i++) {
    const [offset, want] = ranges[i];
    let reply = first[i];
    let have = 0;
    for (;;) {
      pieces.push(reply.data);
      have += reply.data.length;
      largest = Math.max(largest, reply.data.length);
      if (have >= want || reply.data.length === 0) break;
      reply = await read(offset + have, want - have);
      calls++;
    }
  }
  return { data: Buffer.concat(pieces), calls, largest };
}
