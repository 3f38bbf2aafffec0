// What every guest scenario file shares: the result rows (one JSON line each on stdout), how a session
// and an error are described, and the kernel's TLS counters.
import { readFileSync } from 'node:fs';

let failed = 0;

/** Prints one row: { run, id, scenario, ok, cipher, offload, detail }. */
export function row(id, scenario, ok, detail, extra = {}) {
  if (!ok) failed++;
  process.stdout.write(`${JSON.stringify({ run: process.argv[2], id, scenario, ok: Boolean(ok), cipher: extra.cipher ?? '-', offload: extra.offload ?? '-', detail })}\n`);
}

/** Rows printed with ok false so far. */
export function failures() {
  return failed;
}

/** /proc/net/tls_stat as { TlsTxSw: n, ... }. */
export function tlsStat() {
  const out = {};
  for (const line of readFileSync('/proc/net/tls_stat', 'utf8').split('\n')) {
    const m = /^(\w+)\s+(\d+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

export function describeError(error) {
  return error ? `${error.code ?? error.name}: ${error.message}` : String(error);
}

/** The offload column: kernel TLS both ways, or userspace records and why. */
export function offloadOf(security) {
  const o = security?.offload;
  if (!o) return '-';
  if (o.tx && o.rx) return 'kernel tx+rx';
  return `userspace (${o.reason ?? 'no reason'})`;
}

/** TLS 1.3 with the record layer in the kernel both ways (what every kernel-mode row asks for). */
export function sessionOk(security) {
  return security?.version === 'TLSv1.3' && security.offload?.tx === true && security.offload?.rx === true;
}
