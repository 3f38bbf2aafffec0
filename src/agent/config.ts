// The agent's configuration, in tlshd's vocabulary and file format (a GLib key file, at
// /etc/tlshd/config as tlshd 1.4 has it, or the older /etc/tlshd.conf), so an existing tlshd
// configuration works unchanged:
//
//   [authenticate.client]          credentials when the kernel asks for a ClientHello
//   x509.truststore = /etc/pki/ca.pem
//   x509.crl = /etc/pki/ca-crl.pem             (optional: server certificates it revokes are refused)
//   x509.certificate = /etc/pki/client.pem      (optional: presented when the server asks)
//   x509.private_key = /etc/pki/client.key
//   [authenticate.server]          credentials when the kernel asks for a ServerHello
//   x509.truststore = ...          (optional: client certificates are requested and verified)
//   x509.crl = ...                 (optional: client certificates it revokes are refused)
//   x509.certificate = ...
//   x509.private_key = ...
//   [authenticate]
//   keyrings = mykeys;otherkeys    (keyrings linked into the session keyring: ServerHello PSKs are
//                                   searched there; .nvme, .nfs and .nfsd are always linked)
//   [debug]
//   loglevel = 1                   (>= 1 logs debug lines too)
//   keylog = /path                 (rpctls addition: SSLKEYLOGFILE-format key log; off by default)
//   [rpctls]                       (rpctls additions)
//   handshake_timeout_ms = 10000   (when the kernel gives no timeout)
import { existsSync, readFileSync } from 'node:fs';
import { RpctlsError, nearestName } from '../errors.js';
import { TlsContext } from '../tls/context.js';

export interface SideCredentials {
  /** PEM of the trusted CAs, read from x509.truststore. */
  ca: string | undefined;
  /** PEM CRLs, read from x509.crl (re-read at each reload). */
  crl: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  /** The file names, for logs. */
  files: { truststore?: string; crl?: string; certificate?: string; privateKey?: string };
}

export interface AgentConfig {
  client: SideCredentials;
  server: SideCredentials;
  logLevel: number;
  keylogFile: string | undefined;
  handshakeTimeoutMs: number;
  /** `[authenticate] keyrings`: keyring names to link into the session keyring (GLib list, ';'). */
  keyrings: string[];
  /** tlshd keys this agent knows but does not use (x509.pq.*, [debug] tls/nl), logged at load. */
  unsupported: string[];
  /**
   * Logged as warnings at load: unknown keys and sections (typos, named with the nearest known one) and
   * gaps that make some requests fail.
   */
  warnings: string[];
  source: string;
}

/** The agent's configuration file cannot be read or says something wrong; `file`/`line` locate it. */
export class AgentConfigError extends RpctlsError {
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
  ) {
    super('ERR_AGENT_CONFIG', line === undefined ? `${file}: ${message}` : `${file}:${line}: ${message}`);
  }
}

/** Parses a GLib key file: [group] headers, key=value lines, '#' comments. */
export function parseKeyFile(text: string, file: string): Map<string, Map<string, { value: string; line: number }>> {
  const groups = new Map<string, Map<string, { value: string; line: number }>>();
  let current: Map<string, { value: string; line: number }> | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    const number = index + 1;
    if (line === '' || line.startsWith('#')) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      const name = header[1]!.trim();
      current = groups.get(name) ?? new Map();
      groups.set(name, current);
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new AgentConfigError(`expected "key = value" or "[group]", got ${JSON.stringify(raw)}`, file, number);
    if (!current) throw new AgentConfigError('key outside any [group]', file, number);
    current.set(line.slice(0, eq).trim(), { value: line.slice(eq + 1).trim(), line: number });
  });
  return groups;
}

const SIDE_KEYS = new Set(['x509.truststore', 'x509.crl', 'x509.certificate', 'x509.private_key']);

/** Every key per section this agent reads; the lists a typo is compared with. */
const KNOWN: Readonly<Record<string, readonly string[]>> = {
  'authenticate.client': [...SIDE_KEYS],
  'authenticate.server': [...SIDE_KEYS],
  authenticate: ['keyrings'],
  debug: ['loglevel', 'keylog'],
  rpctls: ['handshake_timeout_ms'],
};
/**
 * tlshd (up to 1.4) keys this agent does not use: reported as "not supported", never as typos.
 * x509.pq.*: a second (post-quantum) identity; tls/nl: GnuTLS and netlink
 * debug levels of tlshd.
 */
const TLSHD_UNSUPPORTED: Readonly<Record<string, readonly string[]>> = {
  'authenticate.client': ['x509.pq.certificate', 'x509.pq.private_key'],
  'authenticate.server': ['x509.pq.certificate', 'x509.pq.private_key'],
  debug: ['tls', 'nl'],
};
const SECTIONS = [...new Set([...Object.keys(KNOWN), ...Object.keys(TLSHD_UNSUPPORTED)])];

/** Sorts every key of the file into used, "not supported" (tlshd's) and unknown (a warning with a hint). */
function classify(groups: ReturnType<typeof parseKeyFile>, unsupported: string[], warnings: string[]): void {
  for (const [section, entries] of groups) {
    if (!SECTIONS.includes(section)) {
      const near = nearestName(section, SECTIONS);
      warnings.push(`unknown section [${section}]${near ? `: did you mean [${near}]?` : ''} (its ${entries.size} key(s) are ignored)`);
      continue;
    }
    const used = KNOWN[section] ?? [];
    const tlshd = TLSHD_UNSUPPORTED[section] ?? [];
    for (const [key, { line }] of entries) {
      if (used.includes(key)) continue;
      if (tlshd.includes(key)) {
        unsupported.push(`[${section}] ${key}`);
        continue;
      }
      const near = nearestName(key, [...used, ...tlshd]);
      warnings.push(`[${section}] unknown key ${key} (line ${line})${near ? `: did you mean ${near}?` : ''} (ignored)`);
    }
  }
}

function readPem(path: string, what: string, file: string, line: number, block = '-----BEGIN '): string {
  try {
    const text = readFileSync(path, 'utf8');
    if (!text.includes(block)) throw new AgentConfigError(`${what} ${path} is not PEM${block === '-----BEGIN ' ? '' : ` (no ${block.slice(11)} block)`}`, file, line);
    return text;
  } catch (error) {
    if (error instanceof AgentConfigError) throw error;
    throw new AgentConfigError(`${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, file, line);
  }
}

function side(group: Map<string, { value: string; line: number }> | undefined, name: string, file: string): SideCredentials {
  const out: SideCredentials = { ca: undefined, crl: undefined, cert: undefined, key: undefined, files: {} };
  if (!group) return out;
  for (const [key, { value, line }] of group) {
    if (!SIDE_KEYS.has(key) || value === '') continue;
    if (key === 'x509.truststore') {
      out.ca = readPem(value, 'x509.truststore', file, line);
      out.files.truststore = value;
    } else if (key === 'x509.crl') {
      out.crl = readPem(value, 'x509.crl', file, line, '-----BEGIN X509 CRL');
      out.files.crl = value;
      checkCrl(out.crl, value, file, line);
    } else if (key === 'x509.certificate') {
      out.cert = readPem(value, 'x509.certificate', file, line);
      out.files.certificate = value;
    } else {
      out.key = readPem(value, 'x509.private_key', file, line);
      out.files.privateKey = value;
    }
  }
  if ((out.cert === undefined) !== (out.key === undefined)) {
    throw new AgentConfigError(`[${name}] needs both x509.certificate and x509.private_key, or neither`, file);
  }
  return out;
}

/**
 * Has OpenSSL parse the CRLs now, so a damaged file is a configuration error at load (and a SIGHUP
 * keeps the previous configuration) rather than every later handshake failing.
 */
function checkCrl(crl: string, path: string, file: string, line: number): void {
  try {
    new TlsContext({ role: 'client', crl, kernelTls: 'off', alpn: 'off' });
  } catch (error) {
    throw new AgentConfigError(`x509.crl ${path}: ${(error as Error).message.replace(/^crl /, '').replace(/; received .*$/, '')}`, file, line);
  }
}

function integer(entry: { value: string; line: number } | undefined, key: string, file: string, min: number, max: number, fallback: number): number {
  if (!entry) return fallback;
  const n = Number(entry.value);
  if (!Number.isInteger(n) || n < min || n > max) throw new AgentConfigError(`${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(entry.value)}`, file, entry.line);
  return n;
}

export function parseAgentConfig(text: string, file: string): AgentConfig {
  const groups = parseKeyFile(text, file);
  const unsupported: string[] = [];
  const warnings: string[] = [];
  classify(groups, unsupported, warnings);
  const client = side(groups.get('authenticate.client'), 'authenticate.client', file);
  const server = side(groups.get('authenticate.server'), 'authenticate.server', file);
  if (server.cert === undefined) warnings.push('no [authenticate.server] x509.certificate: ServerHello requests (the kernel NFS server) will be refused');
  if (client.ca === undefined) warnings.push('no [authenticate.client] x509.truststore: server certificates are checked against the OpenSSL default store');
  const debug = groups.get('debug');
  const rpctls = groups.get('rpctls');
  const keylog = debug?.get('keylog')?.value;
  const keyrings = (groups.get('authenticate')?.get('keyrings')?.value ?? '').split(';').map((k) => k.trim()).filter((k) => k !== '');
  return {
    client,
    server,
    logLevel: integer(debug?.get('loglevel'), 'loglevel', file, 0, 10, 0),
    keylogFile: keylog ? keylog : undefined,
    keyrings,
    handshakeTimeoutMs: integer(rpctls?.get('handshake_timeout_ms'), 'handshake_timeout_ms', file, 100, 600_000, 10_000),
    unsupported,
    warnings,
    source: file,
  };
}

export function loadAgentConfig(file: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new AgentConfigError(`cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, file);
  }
  return parseAgentConfig(text, file);
}

/** Where the agent looks without --config: tlshd 1.4's path, then the one older tlshd used. */
export const DEFAULT_CONFIG_PATHS = { current: '/etc/tlshd/config', legacy: '/etc/tlshd.conf' } as const;

/**
 * The configuration file to read: `explicit` (--config) when given; else `paths.current`; else
 * `paths.legacy` with a warning to move it (tlshd 1.4 still reads it too). Neither present: the current
 * path, whose "cannot read" error then names the path an operator should create.
 */
export function resolveConfigPath(
  explicit: string | undefined,
  paths: { current: string; legacy: string } = DEFAULT_CONFIG_PATHS,
): { file: string; warning?: string } {
  if (explicit !== undefined) return { file: explicit };
  if (existsSync(paths.current) || !existsSync(paths.legacy)) return { file: paths.current };
  return { file: paths.legacy, warning: `${paths.current} is absent: reading the old path ${paths.legacy}; move it to ${paths.current} (tlshd 1.4's path)` };
}
