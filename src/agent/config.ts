// The agent's configuration, in tlshd's vocabulary and file format (a GLib key file, as
// /etc/tlshd.conf or /etc/tlshd/config), so an existing tlshd configuration works unchanged:
//
//   [authenticate.client]          credentials when the kernel asks for a ClientHello
//   x509.truststore = /etc/pki/ca.pem
//   x509.certificate = /etc/pki/client.pem      (optional: presented when the server asks)
//   x509.private_key = /etc/pki/client.key
//   [authenticate.server]          credentials when the kernel asks for a ServerHello
//   x509.truststore = ...          (optional: client certificates are requested and verified)
//   x509.certificate = ...
//   x509.private_key = ...
//   [debug]
//   loglevel = 1                   (>= 1 logs debug lines too)
//   keylog = /path                 (rpctls addition: SSLKEYLOGFILE-format key log; off by default)
//   [rpctls]                       (rpctls additions)
//   handshake_timeout_ms = 10000   (when the kernel gives no timeout)
import { readFileSync } from 'node:fs';
import { RpctlsError } from '../errors.js';

export interface SideCredentials {
  /** PEM of the trusted CAs, read from x509.truststore. */
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  /** The file names, for logs. */
  files: { truststore?: string; certificate?: string; privateKey?: string };
}

export interface AgentConfig {
  client: SideCredentials;
  server: SideCredentials;
  logLevel: number;
  keylogFile: string | undefined;
  handshakeTimeoutMs: number;
  /** Keys and sections this agent does not use (tlshd has more); logged at debug level. */
  ignored: string[];
  /** Gaps that make some requests fail, logged as warnings at load. */
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

const SIDE_KEYS = new Set(['x509.truststore', 'x509.certificate', 'x509.private_key']);

function readPem(path: string, what: string, file: string, line: number): string {
  try {
    const text = readFileSync(path, 'utf8');
    if (!text.includes('-----BEGIN ')) throw new AgentConfigError(`${what} ${path} is not PEM`, file, line);
    return text;
  } catch (error) {
    if (error instanceof AgentConfigError) throw error;
    throw new AgentConfigError(`${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, file, line);
  }
}

function side(group: Map<string, { value: string; line: number }> | undefined, name: string, file: string, ignored: string[]): SideCredentials {
  const out: SideCredentials = { ca: undefined, cert: undefined, key: undefined, files: {} };
  if (!group) return out;
  for (const [key, { value, line }] of group) {
    if (!SIDE_KEYS.has(key)) {
      ignored.push(`[${name}] ${key}`);
      continue;
    }
    if (value === '') continue;
    if (key === 'x509.truststore') {
      out.ca = readPem(value, 'x509.truststore', file, line);
      out.files.truststore = value;
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

function integer(entry: { value: string; line: number } | undefined, key: string, file: string, min: number, max: number, fallback: number): number {
  if (!entry) return fallback;
  const n = Number(entry.value);
  if (!Number.isInteger(n) || n < min || n > max) throw new AgentConfigError(`${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(entry.value)}`, file, entry.line);
  return n;
}

export function parseAgentConfig(text: string, file: string): AgentConfig {
  const groups = parseKeyFile(text, file);
  const ignored: string[] = [];
  const known = new Set(['authenticate.client', 'authenticate.server', 'debug', 'rpctls']);
  for (const [name, entries] of groups) {
    if (!known.has(name)) for (const key of entries.keys()) ignored.push(`[${name}] ${key}`);
  }
  const client = side(groups.get('authenticate.client'), 'authenticate.client', file, ignored);
  const server = side(groups.get('authenticate.server'), 'authenticate.server', file, ignored);
  const warnings: string[] = [];
  if (server.cert === undefined) warnings.push('no [authenticate.server] x509.certificate: ServerHello requests (the kernel NFS server) will be refused');
  if (client.ca === undefined) warnings.push('no [authenticate.client] x509.truststore: server certificates are checked against the OpenSSL default store');
  const debug = groups.get('debug');
  for (const key of debug?.keys() ?? []) if (!['loglevel', 'keylog', 'tls', 'nl'].includes(key)) ignored.push(`[debug] ${key}`);
  const rpctls = groups.get('rpctls');
  for (const key of rpctls?.keys() ?? []) if (key !== 'handshake_timeout_ms') ignored.push(`[rpctls] ${key}`);
  const keylog = debug?.get('keylog')?.value;
  return {
    client,
    server,
    logLevel: integer(debug?.get('loglevel'), 'loglevel', file, 0, 10, 0),
    keylogFile: keylog ? keylog : undefined,
    handshakeTimeoutMs: integer(rpctls?.get('handshake_timeout_ms'), 'handshake_timeout_ms', file, 100, 600_000, 10_000),
    ignored,
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
