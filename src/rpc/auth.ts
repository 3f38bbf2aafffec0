import { InvalidOptionError, validateUint32 } from '../errors.js';
import { XdrReader } from '../xdr/reader.js';
import { XdrWriter } from '../xdr/writer.js';
import { AUTH_SYS_MAX_GIDS, AUTH_SYS_MAX_MACHINENAME, AuthFlavor, MAX_AUTH_BYTES } from './constants.js';
import { AuthBadCredError } from './errors.js';

/** opaque_auth: a flavor and its body (a view into the received record). */
export interface OpaqueAuth {
  flavor: number;
  body: Buffer;
}

/** AUTH_SYS (a.k.a. AUTH_UNIX) credential body. */
export interface AuthSysParams {
  stamp: number;
  machinename: string;
  uid: number;
  gid: number;
  gids: number[];
}

const EMPTY = Buffer.alloc(0);
export const AUTH_NONE: Readonly<OpaqueAuth> = Object.freeze({ flavor: AuthFlavor.AUTH_NONE, body: EMPTY });
/** The RFC 9289 probe credential. */
export const AUTH_TLS: Readonly<OpaqueAuth> = Object.freeze({ flavor: AuthFlavor.AUTH_TLS, body: EMPTY });

/** Builds an AUTH_SYS credential; the body is encoded once, so reusing it costs nothing per call. */
export function authSys(params: Partial<AuthSysParams> & { uid: number; gid: number }): OpaqueAuth {
  const machinename = params.machinename ?? 'localhost';
  if (typeof machinename !== 'string' || Buffer.byteLength(machinename) > AUTH_SYS_MAX_MACHINENAME) {
    throw new InvalidOptionError('authSys.machinename', `a string of at most ${AUTH_SYS_MAX_MACHINENAME} bytes`, machinename);
  }
  const gids = params.gids ?? [];
  if (!Array.isArray(gids) || gids.length > AUTH_SYS_MAX_GIDS) {
    throw new InvalidOptionError('authSys.gids', `an array of at most ${AUTH_SYS_MAX_GIDS} gids`, gids);
  }
  const w = new XdrWriter(64);
  w.uint(validateUint32(params.stamp ?? (Date.now() / 1000) >>> 0, 'authSys.stamp'));
  w.string(machinename);
  w.uint(validateUint32(params.uid, 'authSys.uid'));
  w.uint(validateUint32(params.gid, 'authSys.gid'));
  w.uint(gids.length);
  gids.forEach((gid, i) => w.uint(validateUint32(gid, `authSys.gids[${i}]`)));
  return { flavor: AuthFlavor.AUTH_SYS, body: w.toBuffer() };
}

/** Decodes an AUTH_SYS body; any violation of its limits is AUTH_BADCRED, as servers answer it. */
export function decodeAuthSys(body: Buffer): AuthSysParams {
  try {
    const r = new XdrReader(body);
    const stamp = r.uint();
    const machinename = r.string(AUTH_SYS_MAX_MACHINENAME);
    const uid = r.uint();
    const gid = r.uint();
    const gids = r.array(AUTH_SYS_MAX_GIDS, (rr) => rr.uint());
    r.assertEnd();
    return { stamp, machinename, uid, gid, gids };
  } catch (err) {
    throw new AuthBadCredError(`malformed AUTH_SYS credential: ${(err as Error).message}`);
  }
}

export function validateOpaqueAuth(auth: unknown, option: string): OpaqueAuth {
  const a = auth as OpaqueAuth;
  if (typeof a !== 'object' || a === null || !Number.isInteger(a.flavor) || !Buffer.isBuffer(a.body)) {
    throw new InvalidOptionError(option, 'an opaque_auth { flavor: number, body: Buffer }', auth);
  }
  if (a.body.length > MAX_AUTH_BYTES) {
    throw new InvalidOptionError(option, `an opaque_auth with a body of at most ${MAX_AUTH_BYTES} bytes`, a.body);
  }
  return a;
}
