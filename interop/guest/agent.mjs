// Issue [agent] scenarios: `rpctls agent` instead of tlshd, serving the handshakes of the kernel's own
// NFS client (ClientHello) and nfsd (ServerHello) for mounts of the xprtsec=tls export. Run after the
// tlshd scenarios: the first one stops tlshd for good. Rows as in scenarios.mjs.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

import { row, tlsStat } from './common.mjs';

const env = process.env;
const PKI = env.INTEROP_PKI ?? '/interop-run/pki';
const NAME = env.INTEROP_NAME ?? 'nfs.test';
const REPO = new URL('../../', import.meta.url).pathname;
const TLSHD_CONF = '/run/interop/tlshd.conf';
const EXPORT_DIR = '/srv/nfs/tls';

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;


function sha256File(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function run(command, args, timeoutMs = 60_000) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    execFile(command, args, { encoding: 'utf8', timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, output: `${stdout}${stderr}`.trim(), ms: ms(t0) });
    });
  });
}

/** mount -t nfs -o vers=4.2,xprtsec=MODE NAME:/EXPORT DIR (nfsd on 2049; both handshakes go to the agent). */
function mountTls(dir, xprtsec = 'tls', exportPath = '/tls') {
  execFileSync('mkdir', ['-p', dir]);
  return run('timeout', ['60', 'mount', '-t', 'nfs', '-o', `vers=4.2,xprtsec=${xprtsec},retry=0,soft,timeo=100,retrans=1`, `${NAME}:${exportPath}`, dir], 65_000);
}

function umount(dir) {
  return run('umount', [dir], 30_000);
}

function stopTlshd() {
  try {
    execFileSync('pkill', ['-x', 'tlshd']);
  } catch {
    // not running
  }
  for (let i = 0; i < 50; i++) {
    try {
      execFileSync('pgrep', ['-x', 'tlshd']);
    } catch {
      return;
    }
    execFileSync('sleep', ['0.1']);
  }
}

/** Starts `rpctls agent --config FILE`; resolves once it logged "agent ready". */
async function startAgent(config) {
  const child = spawn(process.execPath, [`${REPO}bin/rpctls.js`, 'agent', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  const logs = [];
  const rl = createInterface({ input: child.stderr });
  const ready = new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 20_000);
    rl.on('line', (line) => {
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        entry = { msg: line };
      }
      logs.push(entry);
      process.stderr.write(`agent: ${line}\n`); // into guest.log, for diagnosis
      if (entry.msg === 'agent ready') {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  return { child, logs, ready: await ready, exited };
}

const handshakes = (logs, msg, role) => logs.filter((l) => l.msg === msg && (!role || l.role === role));
const summary = (l) => `${l.role} ${l.peer ?? '?'} ${l.status}${l.cipher ? ` ${l.cipher}` : ''}${l.error ? ` (${l.error.code}: ${l.error.message})` : ''}`;


// ---- 3: no agent at all -----------------------------------------------------------------------------

async function noAgent() {
  const id = 'agent-none';
  const scenario = 'no handshake agent (tlshd stopped): mount xprtsec=tls fails with the kernel\'s error';
  stopTlshd();
  const dmesgBefore = execFileSync('dmesg', { encoding: 'utf8' }).split('\n').length;
  const mount = await mountTls('/mnt/agent-none');
  if (mount.code === 0) await umount('/mnt/agent-none');
  const kernel = execFileSync('dmesg', { encoding: 'utf8' }).split('\n').slice(dmesgBefore - 1).filter((l) => /nfs|rpc|tls|handshake/i.test(l)).slice(-3);
  row(id, scenario, mount.code !== 0,
    `mount exit ${mount.code} after ${mount.ms.toFixed(0)} ms: ${JSON.stringify(mount.output.split('\n').pop())}; kernel log: ${JSON.stringify(kernel.join(' | ') || 'nothing')}`,
    { cipher: 'none', offload: 'none' });
}

// ---- 1: a TLS mount, both handshakes by rpctls agent, 8 MiB written and read back ------------------

async function agentMount() {
  const id = 'agent-mount';
  const scenario = 'rpctls agent (tlshd.conf as is) serves the kernel NFS client and nfsd: mount, 8 MiB written and read back';
  stopTlshd();
  const agent = await startAgent(TLSHD_CONF);
  if (!agent.ready) {
    row(id, scenario, false, `agent did not start: ${JSON.stringify(agent.logs.slice(-3))}`);
    return;
  }
  const dir = '/mnt/agent';
  try {
    const before = tlsStat();
    const first = await mountTls(dir);
    if (first.code !== 0) {
      row(id, scenario, false, `mount exit ${first.code}: ${first.output}; agent: ${agent.logs.filter((l) => l.level !== 'debug').map((l) => l.msg + (l.role ? ` ${summary(l)}` : '')).join('; ')}`);
      return;
    }
    const data = Buffer.alloc(8 << 20);
    for (let i = 0; i < data.length; i += 65536) data.set(createHash('sha256').update(`${i}:${Math.random()}`).digest(), i);
    const wrote = createHash('sha256').update(data).digest('hex');
    writeFileSync('/tmp/agent.bin', data);
    const copy = await run('dd', ['if=/tmp/agent.bin', `of=${dir}/agent.bin`, 'bs=1M', 'conv=fsync'], 60_000);
    const inFlight = tlsStat();
    await umount(dir);
    // A second mount: a new connection, new handshakes, and a read that cannot come from the page cache.
    const second = await mountTls(dir);
    const readBack = second.code === 0 ? sha256File(`${dir}/agent.bin`) : 'not mounted';
    const onServer = sha256File(`${EXPORT_DIR}/agent.bin`);
    if (second.code === 0) await umount(dir);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const done = handshakes(agent.logs, 'handshake done');
    const clients = done.filter((l) => l.role === 'client');
    const servers = done.filter((l) => l.role === 'server');
    const kernelBoth = done.every((l) => l.offload?.tx === true && l.offload?.rx === true);
    const txSessions = inFlight.TlsTxSw - before.TlsTxSw;
    const ok = copy.code === 0 && second.code === 0 && readBack === wrote && onServer === wrote &&
      clients.length >= 2 && servers.length >= 2 && kernelBoth && txSessions >= 2 && (inFlight.TlsDecryptError ?? 0) === (before.TlsDecryptError ?? 0);
    row(id, scenario, ok,
      `mounts ${first.ms.toFixed(0)} / ${second.ms.toFixed(0)} ms; dd exit ${copy.code}; sha256 written ${wrote.slice(0, 12)}, read back ${readBack.slice(0, 12)}, on the export ${onServer.slice(0, 12)}; ` +
        `agent handshakes: ${clients.length} client, ${servers.length} server (${done.map((l) => `${l.role} ${l.ms} ms`).join(', ')}); ` +
        `tls_stat TlsTxSw +${txSessions}, TlsCurrTxSw ${inFlight.TlsCurrTxSw} during the first mount, TlsDecryptError ${inFlight.TlsDecryptError ?? 0}`,
      { cipher: done[0]?.cipher ?? '-', offload: kernelBoth && done.length > 0 ? 'kernel tx+rx (both ends)' : 'NOT kernel' });
  } finally {
    agent.child.kill('SIGTERM');
    await agent.exited;
  }
}

// ---- 2a: an untrusted server certificate ----------------------------------------------------------------

async function agentUntrusted() {
  const id = 'agent-untrusted';
  const scenario = 'rpctls agent with a client truststore that does not know the server CA: mount refused, agent logs why';
  stopTlshd();
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/tmp/other-ca.key',
    '-out', '/tmp/other-ca.pem', '-days', '1', '-subj', '/CN=some other CA'], { stdio: 'ignore' });
  const conf = readFileSync(TLSHD_CONF, 'utf8').replace(/^(\[authenticate\.client\][^[]*?x509\.truststore\s*=\s*).*$/m, '$1/tmp/other-ca.pem');
  writeFileSync('/tmp/agent-untrusted.conf', conf);
  const agent = await startAgent('/tmp/agent-untrusted.conf');
  try {
    const mount = await mountTls('/mnt/agent-untrusted');
    if (mount.code === 0) await umount('/mnt/agent-untrusted');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const failed = handshakes(agent.logs, 'handshake failed', 'client');
    const why = failed.find((l) => l.error?.code === 'ERR_TLS_CERT_VERIFY');
    row(id, scenario, agent.ready && mount.code !== 0 && why && why.status === 'EACCES',
      `mount exit ${mount.code} after ${mount.ms.toFixed(0)} ms: ${JSON.stringify(mount.output.split('\n').pop())}; agent: ${failed.map(summary).join('; ') || 'no failure logged'}`,
      { cipher: 'none', offload: 'none' });
  } finally {
    agent.child.kill('SIGTERM');
    await agent.exited;
  }
}

// ---- 2b: the agent killed mid-run; a restarted agent serves the next mount ---------------------------

async function agentRestart() {
  const id = 'agent-restart';
  const scenario = 'rpctls agent killed during a mount: the kernel times the handshake out; a restarted agent serves the next mount';
  stopTlshd();
  const first = await startAgent(TLSHD_CONF);
  // Frozen, the agent still holds the netlink group, so the kernel queues the request for it; then it dies.
  first.child.kill('SIGSTOP');
  const pending = mountTls('/mnt/agent-restart');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  first.child.kill('SIGKILL');
  await first.exited;
  const failedMount = await pending;
  if (failedMount.code === 0) await umount('/mnt/agent-restart');
  const second = await startAgent(TLSHD_CONF);
  try {
    const mount = await mountTls('/mnt/agent-restart');
    const hello = mount.code === 0 ? readFileSync('/mnt/agent-restart/hello.txt', 'utf8') : '';
    if (mount.code === 0) await umount('/mnt/agent-restart');
    const done = handshakes(second.logs, 'handshake done');
    row(id, scenario, first.ready && failedMount.code !== 0 && mount.code === 0 && hello === `hello from ${EXPORT_DIR}\n` && done.length >= 2,
      `with the agent killed: mount exit ${failedMount.code} after ${failedMount.ms.toFixed(0)} ms (${JSON.stringify(failedMount.output.split('\n').pop())}); ` +
        `restarted agent: mount exit ${mount.code} in ${mount.ms.toFixed(0)} ms${mount.code ? ` (${JSON.stringify(mount.output.split('\n').pop())})` : ''}, hello.txt ${hello ? 'read' : 'NOT read'}, handshakes ${done.map(summary).join('; ')}`,
      { cipher: done[0]?.cipher ?? '-', offload: done.length > 0 && done.every((l) => l.offload?.tx && l.offload?.rx) ? 'kernel tx+rx (both ends)' : '-' });
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
}

// ---- 4: mutual TLS, without kernel keyrings ----------------------------------------------------------

async function agentMtls() {
  const id = 'agent-mtls';
  const scenario = 'rpctls agent: mount xprtsec=mtls of an mtls-only export (client certificate verified by the agent for nfsd)';
  stopTlshd();
  const agent = await startAgent(TLSHD_CONF);
  try {
    const mtls = await mountTls('/mnt/agent-mtls', 'mtls', '/mtls');
    const hello = mtls.code === 0 ? readFileSync('/mnt/agent-mtls/hello.txt', 'utf8') : '';
    if (mtls.code === 0) await umount('/mnt/agent-mtls');
    const done = handshakes(agent.logs, 'handshake done');
    const server = done.find((l) => l.role === 'server');
    const client = done.find((l) => l.role === 'client');
    // Control: an anonymous (xprtsec=tls) session must not get into the mtls-only export.
    const anonymous = await mountTls('/mnt/agent-mtls-anon', 'tls', '/mtls');
    if (anonymous.code === 0) await umount('/mnt/agent-mtls-anon');
    const ok = agent.ready && mtls.code === 0 && hello === 'hello from /srv/nfs/mtls\n' && client?.authMode === 'x509' &&
      server?.tlsAuthMode === 'mtls' && /client\.nfs\.test/.test(server?.peerCertificate ?? '') && anonymous.code !== 0;
    row(id, scenario, ok,
      `mtls mount exit ${mtls.code}${mtls.code ? ` (${JSON.stringify(mtls.output.split('\n').pop())})` : ''}, hello.txt ${hello ? 'read' : 'NOT read'}; ` +
        `client request auth-mode ${client?.authMode ?? '?'}; server side ${server?.tlsAuthMode ?? '?'} with ${server?.peerCertificate ?? 'no certificate'}; ` +
        `control, xprtsec=tls into the mtls export: exit ${anonymous.code} (${JSON.stringify(anonymous.output.split('\n').pop())})`,
      { cipher: server?.cipher ?? '-', offload: done.length > 0 && done.every((l) => l.offload?.tx && l.offload?.rx) ? 'kernel tx+rx (both ends)' : '-' });
  } finally {
    agent.child.kill('SIGTERM');
    await agent.exited;
  }
}

// ---- 5: the client identity from a kernel keyring (mount -o cert_serial=,privkey_serial=) ----------------

async function agentKeyring() {
  const id = 'agent-keyring';
  const scenario = 'rpctls agent: mount xprtsec=mtls,cert_serial=,privkey_serial= uses the keyring identity (DER user keys), not the configuration file\'s';
  stopTlshd();
  // A second client identity from the same CA, with its own subject; tlshd takes DER from the keyring.
  const ossl = (...args) => execFileSync('openssl', args, { cwd: '/tmp', stdio: 'ignore' });
  ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'kr.key', '-out', 'kr.csr', '-subj', `/CN=keyring.client.${NAME}`);
  writeFileSync('/tmp/kr.ext', `basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:keyring.client.${NAME}\n`);
  ossl('x509', '-req', '-in', 'kr.csr', '-CA', `${PKI}/ca.pem`, '-CAkey', `${PKI}/ca.key`, '-CAcreateserial', '-days', '1', '-out', 'kr.pem', '-extfile', 'kr.ext', '-outform', 'DER');
  ossl('pkcs8', '-topk8', '-nocrypt', '-in', 'kr.key', '-outform', 'DER', '-out', 'kr.key.der');
  // add_key(2) through the addon (what `keyctl padd user NAME @s < file` does): into this process's
  // session keyring, which the agent started below inherits, so it possesses (and may read) the keys.
  const { addKey, KeySpec } = await import(`${REPO}dist/agent/keyring.js`);
  const cert = addKey('user', 'interop keyring client cert', readFileSync('/tmp/kr.pem'), KeySpec.SESSION);
  const privkey = addKey('user', 'interop keyring client key', readFileSync('/tmp/kr.key.der'), KeySpec.SESSION);
  const agent = await startAgent(TLSHD_CONF);
  try {
    const dir = '/mnt/agent-keyring';
    const mount = await mountTls(dir, `mtls,cert_serial=${cert},privkey_serial=${privkey}`, '/mtls');
    const hello = mount.code === 0 ? readFileSync(`${dir}/hello.txt`, 'utf8') : '';
    if (mount.code === 0) await umount(dir);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const done = handshakes(agent.logs, 'handshake done');
    const server = done.find((l) => l.role === 'server');
    const client = done.find((l) => l.role === 'client');
    const used = client?.keyringIdentity;
    // nfsd's side (the agent as TLS server) saw the keyring certificate, not client.NAME from the file.
    const ok = agent.ready && mount.code === 0 && hello === 'hello from /srv/nfs/mtls\n' && client?.authMode === 'x509' &&
      server?.tlsAuthMode === 'mtls' && (server?.peerCertificate ?? '').includes(`CN=keyring.client.${NAME}`) && client?.keyringIdentity?.cert === cert;
    row(id, scenario, ok,
      `keys ${cert} (certificate), ${privkey} (private key); mount exit ${mount.code}${mount.code ? ` (${JSON.stringify(mount.output.split('\n').pop())})` : ''}, hello.txt ${hello ? 'read' : 'NOT read'}; ` +
        `agent: ${used ? `keyring identity used (cert ${used.cert}, key ${used.privkey})` : 'keyring identity NOT used'}; server side ${server?.tlsAuthMode ?? '?'} with ${server?.peerCertificate ?? 'no certificate'}; ` +
        `${agent.logs.filter((l) => l.msg === 'handshake failed').map(summary).join('; ')}`,
      { cipher: server?.cipher ?? '-', offload: done.length > 0 && done.every((l) => l.offload?.tx && l.offload?.rx) ? 'kernel tx+rx (both ends)' : '-' });
  } finally {
    agent.child.kill('SIGTERM');
    await agent.exited;
  }
}

// ---- 6: what the running kernel supports, as the agent logs it at start --------------------------------

async function agentCapabilities() {
  const id = 'agent-capabilities';
  const scenario = 'rpctls agent logs what the kernel supports at start (kernel TLS, rekey, TLS_TX_MAX_PAYLOAD_LEN, the handshake family)';
  stopTlshd();
  const agent = await startAgent(TLSHD_CONF);
  try {
    const line = agent.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('kernel: '))?.msg ?? '';
    const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
    // Linux 7.2 (sid) has KTLS rekey (>= 6.14) and TLS_TX_MAX_PAYLOAD_LEN (>= 6.19); 6.12 (trixie) neither.
    const newer = env.INTEROP_TARGET === 'sid';
    const expected = `kernel: tls=yes rekey=${newer ? 'yes' : 'no'} record_size_limit=${newer ? 'yes' : 'no'} handshake=yes keyring_attr=unknown`;
    row(id, scenario, agent.ready && line === expected, `Linux ${release}: ${JSON.stringify(line)}${line === expected ? '' : ` (expected ${JSON.stringify(expected)})`}`,
      { cipher: 'none', offload: 'none' });
  } finally {
    agent.child.kill('SIGTERM');
    await agent.exited;
  }
}

// ---- 7: certificate revocation (x509.crl), each side ---------------------------------------------------

/** A client and a server certificate from the interop CA, both revoked, and the CA's CRL (openssl ca). */
function revokedPki() {
  const dir = '/tmp/crl';
  if (existsSync(`${dir}/crl.pem`)) return dir;
  execFileSync('mkdir', ['-p', dir]);
  const ossl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  writeFileSync(`${dir}/ca.cnf`, `[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = ${dir}/index.txt\ncrlnumber = ${dir}/crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\n`);
  writeFileSync(`${dir}/index.txt`, '');
  writeFileSync(`${dir}/crlnumber`, '01\n');
  const issue = (name, subject, ext) => {
    ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
    writeFileSync(`${dir}/${name}.ext`, ext);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', `${PKI}/ca.pem`, '-CAkey', `${PKI}/ca.key`, '-CAcreateserial', '-days', '1', '-out', `${name}.pem`, '-extfile', `${name}.ext`);
    ossl('ca', '-config', 'ca.cnf', '-cert', `${PKI}/ca.pem`, '-keyfile', `${PKI}/ca.key`, '-revoke', `${name}.pem`);
  };
  issue('revoked-client', `/CN=revoked.client.${NAME}`, `basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:revoked.client.${NAME}\n`);
  issue('revoked-server', `/CN=${NAME}`, `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:${NAME},IP:127.0.0.1\n`);
  ossl('ca', '-config', 'ca.cnf', '-cert', `${PKI}/ca.pem`, '-keyfile', `${PKI}/ca.key`, '-gencrl', '-out', 'crl.pem');
  return dir;
}

/** An agent configuration in tlshd's format: each side's files, and its CRL when given. */
function agentConfig(file, client, server) {
  const side = (name, s) => `[authenticate.${name}]\nx509.truststore=${PKI}/ca.pem\nx509.certificate=${s.cert}\nx509.private_key=${s.key}\n${s.crl ? `x509.crl=${s.crl}\n` : ''}`;
  writeFileSync(file, `[debug]\nloglevel=1\n\n${side('client', client)}\n${side('server', server)}`);
  return file;
}

const pkiFiles = (name) => ({ cert: `${PKI}/${name}.pem`, key: `${PKI}/${name}.key` });

async function agentCrlClient() {
  const id = 'agent-crl-client';
  const scenario = 'rpctls agent, x509.crl on the server side: a revoked NFS client certificate is refused (mount xprtsec=mtls fails); an unrevoked one mounts';
  stopTlshd();
  const dir = revokedPki();
  const revoked = { cert: `${dir}/revoked-client.pem`, key: `${dir}/revoked-client.key` };
  const server = { ...pkiFiles('server'), crl: `${dir}/crl.pem` };
  const refusedAgent = await startAgent(agentConfig('/tmp/agent-crl-client.conf', revoked, server));
  let refused;
  let refusal;
  try {
    refused = await mountTls('/mnt/agent-crl', 'mtls', '/mtls');
    if (refused.code === 0) await umount('/mnt/agent-crl');
    await new Promise((resolve) => setTimeout(resolve, 300));
    refusal = handshakes(refusedAgent.logs, 'handshake failed', 'server').find((l) => l.error?.code === 'ERR_TLS_CERT_VERIFY');
  } finally {
    refusedAgent.child.kill('SIGTERM');
    await refusedAgent.exited;
  }
  // Control: the same CRL, the configuration's own (unrevoked) client certificate.
  const goodAgent = await startAgent(agentConfig('/tmp/agent-crl-good.conf', pkiFiles('client'), server));
  try {
    const good = await mountTls('/mnt/agent-crl', 'mtls', '/mtls');
    const hello = good.code === 0 ? readFileSync('/mnt/agent-crl/hello.txt', 'utf8') : '';
    if (good.code === 0) await umount('/mnt/agent-crl');
    const done = handshakes(goodAgent.logs, 'handshake done', 'server')[0];
    const ok = refusedAgent.ready && goodAgent.ready && refused.code !== 0 && /certificate revoked/.test(refusal?.error?.message ?? '') && good.code === 0 && hello === 'hello from /srv/nfs/mtls\n';
    row(id, scenario, ok,
      `revoked client: mount exit ${refused.code} (${JSON.stringify(refused.output.split('\n').pop())}), agent (nfsd side): ${refusal ? summary(refusal) : 'no verification failure logged'}; ` +
        `unrevoked client, same CRL: mount exit ${good.code}, hello.txt ${hello ? 'read' : 'NOT read'}, server side ${done?.tlsAuthMode ?? '?'} with ${done?.peerCertificate ?? 'no certificate'}`,
      { cipher: done?.cipher ?? '-', offload: done?.offload?.tx && done?.offload?.rx ? 'kernel tx+rx (both ends)' : '-' });
  } finally {
    goodAgent.child.kill('SIGTERM');
    await goodAgent.exited;
  }
}

async function agentCrlServer() {
  const id = 'agent-crl-server';
  const scenario = 'rpctls agent, x509.crl on the client side: nfsd presenting a revoked certificate is refused by the NFS client\'s handshake; without the CRL it mounts';
  stopTlshd();
  const dir = revokedPki();
  const revokedServer = { cert: `${dir}/revoked-server.pem`, key: `${dir}/revoked-server.key` };
  const withCrl = await startAgent(agentConfig('/tmp/agent-crl-server.conf', { ...pkiFiles('client'), crl: `${dir}/crl.pem` }, revokedServer));
  let refused;
  let refusal;
  try {
    refused = await mountTls('/mnt/agent-crl');
    if (refused.code === 0) await umount('/mnt/agent-crl');
    await new Promise((resolve) => setTimeout(resolve, 300));
    refusal = handshakes(withCrl.logs, 'handshake failed', 'client').find((l) => l.error?.code === 'ERR_TLS_CERT_VERIFY');
  } finally {
    withCrl.child.kill('SIGTERM');
    await withCrl.exited;
  }
  // Control: the same revoked server certificate and no CRL: the refusal above is the CRL's doing.
  const noCrl = await startAgent(agentConfig('/tmp/agent-crl-none.conf', pkiFiles('client'), revokedServer));
  try {
    const mounted = await mountTls('/mnt/agent-crl');
    if (mounted.code === 0) await umount('/mnt/agent-crl');
    const done = handshakes(noCrl.logs, 'handshake done', 'client')[0];
    const ok = withCrl.ready && noCrl.ready && refused.code !== 0 && /certificate revoked/.test(refusal?.error?.message ?? '') && refusal?.status === 'EACCES' && mounted.code === 0;
    row(id, scenario, ok,
      `with the CRL: mount exit ${refused.code} (${JSON.stringify(refused.output.split('\n').pop())}), agent (client side): ${refusal ? summary(refusal) : 'no verification failure logged'}; ` +
        `control without the CRL: mount exit ${mounted.code}`,
      { cipher: done?.cipher ?? '-', offload: done?.offload?.tx && done?.offload?.rx ? 'kernel tx+rx (both ends)' : '-' });
  } finally {
    noCrl.child.kill('SIGTERM');
    await noCrl.exited;
  }
}

export const AGENT_SCENARIOS = {
  'agent-mtls': agentMtls,
  'agent-none': noAgent,
  'agent-mount': agentMount,
  'agent-untrusted': agentUntrusted,
  'agent-restart': agentRestart,
  'agent-keyring': agentKeyring,
  'agent-capabilities': agentCapabilities,
  'agent-crl-client': agentCrlClient,
  'agent-crl-server': agentCrlServer,
};

