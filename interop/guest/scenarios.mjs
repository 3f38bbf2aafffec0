// The interop scenarios, run inside the UML guest by guest/init.sh on the rootfs's Debian nodejs:
//   node scenarios.mjs <name>
// Each prints one JSON row per line on stdout ({ id, scenario, ok, cipher, offload, detail }) and exits
// 0 only when all its rows are ok. Peers: the kernel's nfsd on nfs.test:2049 (tlshd as its TLS server),
// rpc.mountd and rpcbind, and the kernel NFS client (mount.nfs, tlshd as its TLS client).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import net from 'node:net';

import { MountClient_v3 } from '../../dist/generated/mount.js';
import { RpcClient, RpcServer, RpcbindClient, TlsContext, authSys, connectTlsStream, createTlsClient, rpcTlsInterceptor } from '../../dist/index.js';
import { AGENT_SCENARIOS } from './agent.mjs';
import { GANESHA_SCENARIOS } from './ganesha.mjs';
import { describeError, failures, offloadOf, row, sessionOk, tlsStat } from './common.mjs';
import { NFS_PROGRAM, compound4, lookup3, ops, read3, readAll } from './nfs.mjs';

const env = process.env;
const PKI = env.INTEROP_PKI ?? '/interop-run/pki';
const NAME = env.INTEROP_NAME ?? 'nfs.test';
const NFS_PORT = 2049;
const EXPORT_ROOT = '/srv/nfs';
const HELLO = { tls: `hello from ${EXPORT_ROOT}/tls\n`, plain: `hello from ${EXPORT_ROOT}/plain\n` };
const BIG_SHA256 = env.INTEROP_BIG_SHA256 ?? '';
const REPO = new URL('../../', import.meta.url).pathname;
const ca = readFileSync(`${PKI}/ca.pem`);
const auth = authSys({ uid: 0, gid: 0, machinename: 'rpctls-interop' });

// ---- output --------------------------------------------------------------------------------------

const FLAVORS = { 0: 'AUTH_NONE', 1: 'AUTH_SYS', 7: 'AUTH_TLS' };
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

// ---- kernel-side evidence: /proc/net/tls_stat and ss -tni ----------------------------------------


/** ss's entries (-tnpi), each { head, info }, for sockets of this process to or from `port`. */
function ssEntries(port) {
  const text = execFileSync('ss', ['-tnpi', 'state', 'established'], { encoding: 'utf8' });
  const entries = [];
  for (const line of text.split('\n').slice(1)) {
    if (line === '') continue;
    if (/^\s/.test(line) && entries.length > 0) entries[entries.length - 1].info += line;
    else entries.push({ head: line, info: '' });
  }
  return entries.filter((e) => e.head.includes(`pid=${process.pid},`) && e.head.includes(`:${port} `));
}
function ulpOf(entry) {
  return /tcp-ulp-tls(?: [\w-]+: [\w.-]+)*/.exec(entry.info)?.[0] ?? null;
}

/** Handshakes tlshd completed as the kernel client's TLS agent (it names the server it verified). */
function tlshdClientHandshakes() {
  try {
    // tlshd 1.0: "Handshake with nfs.test (127.0.0.1) was successful"; 1.4: "Handshake with 'nfs.test' (...) succeeded".
    const done = new RegExp(`Handshake with '?${NAME.replace(/\./g, '\\.')}'? \\(.*\\) (was successful|succeeded)`);
    return readFileSync('/run/interop/tlshd.log', 'utf8').split('\n').filter((l) => done.test(l)).length;
  } catch {
    return 0;
  }
}

// ---- clients -------------------------------------------------------------------------------------

function tlsClient(version, port = NFS_PORT, tls = {}) {
  return createTlsClient({
    host: NAME,
    port,
    timeout: 20_000,
    auth,
    probe: { program: NFS_PROGRAM, version },
    tls: { ca, servername: NAME, ...tls },
  });
}
function plainClient(port = NFS_PORT) {
  return new RpcClient({ host: '127.0.0.1', port, timeout: 20_000, auth });
}

/** A COMPOUND that may meet the grace period nfsd starts in; retried for up to 20 s. */
async function compoundAfterGrace(client, operations) {
  for (let i = 0; ; i++) {
    try {
      return await compound4(client, operations);
    } catch (error) {
      if (error.code !== 'ERR_NFS4ERR_GRACE' || i >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

function sha256(buffers) {
  const h = createHash('sha256');
  for (const b of buffers) h.update(b);
  return h.digest('hex');
}

const CHUNK = 256 * 1024;
const BIG_SIZE = 1024 * 1024;

// ---- scenario a (and d): our client -> kernel nfsd over TLS ---------------------------------------

async function nullCall(version) {
  const before = tlsStat();
  const client = tlsClient(version);
  const t0 = process.hrtime.bigint();
  try {
    await client.connect();
    const handshakeMs = ms(t0);
    const security = client.connection.security;
    const t1 = process.hrtime.bigint();
    const reply = await client.call(NFS_PROGRAM, version, 0);
    const nullMs = ms(t1);
    const ok = sessionOk(security) && reply.length === 0;
    row(`a-null-v${version}`, `client -> nfsd: probe, STARTTLS, TLS 1.3, NFSv${version} NULL inside TLS`, ok,
      `STARTTLS+handshake ${handshakeMs.toFixed(1)} ms, NULL ${nullMs.toFixed(1)} ms, ${security.version}, alpn ${security.alpn ?? 'none'}, auth ${security.authMode}`,
      { cipher: security.cipher, offload: offloadOf(security) });
    if (version !== 4) return;
    // d: the kernel's own view of our socket while the session is open.
    const during = tlsStat();
    const entries = ssEntries(NFS_PORT);
    const ulp = entries.length === 1 ? ulpOf(entries[0]) : null;
    row('d-ss', 'ss -tnpi: our socket (pid of this node) has tcp-ulp-tls', ulp !== null && /txconf: sw/.test(ulp) && /rxconf: sw/.test(ulp),
      ulp ?? `no tcp-ulp-tls on our socket (${entries.length} sockets: ${entries.map((e) => e.head.trim()).join(' | ')})`,
      { cipher: /cipher: (\S+)/.exec(ulp ?? '')?.[1] ?? '-', offload: ulp ? `kernel ${/txconf: (\w+)/.exec(ulp)?.[1]}/${/rxconf: (\w+)/.exec(ulp)?.[1]}` : '-' });
    const keys = ['TlsCurrTxSw', 'TlsCurrRxSw', 'TlsTxSw', 'TlsRxSw'];
    const delta = Object.fromEntries(keys.map((k) => [k, during[k] - before[k]]));
    // Our socket and nfsd's end of the same connection: two software-kernel sessions each way.
    const statOk = delta.TlsCurrTxSw >= 2 && delta.TlsCurrRxSw >= 2 && during.TlsDecryptError === 0;
    row('d-tls_stat', '/proc/net/tls_stat counts the session (ours + nfsd\'s socket)', statOk,
      `${keys.map((k) => `${k} ${before[k]}->${during[k]}`).join(', ')}, TlsDecryptError ${during.TlsDecryptError}`,
      { cipher: security.cipher, offload: 'kernel (sw)' });
  } catch (error) {
    row(`a-null-v${version}`, `client -> nfsd: probe, STARTTLS, TLS 1.3, NFSv${version} NULL inside TLS`, false, describeError(error));
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function read4() {
  const id = 'a-read-v4';
  const scenario = 'client -> nfsd: NFSv4.0 COMPOUND PUTROOTFH/LOOKUP/READ over TLS';
  const client = tlsClient(4);
  try {
    const t0 = process.hrtime.bigint();
    const res = await compoundAfterGrace(client, [ops.putrootfh(), ops.lookup('tls'), ops.lookup('hello.txt'), ops.read(0, 4096)]);
    const hello = res[3];
    const [, , , , getfh] = await compound4(client, [ops.putrootfh(), ops.lookup('tls'), ops.lookup('big.bin'), ops.getfh(), ops.getfh()]);
    // READs of 256 KiB, all in flight at once on the one TLS connection.
    const big = await readAll(async (offset, count) => (await compound4(client, [ops.putfh(getfh.fh), ops.read(offset, count)]))[1], BIG_SIZE, CHUNK);
    const digest = sha256([big.data]);
    const security = client.connection.security;
    const helloOk = hello.data.toString() === HELLO.tls && hello.eof;
    const bigOk = digest === BIG_SHA256 && big.data.length === BIG_SIZE;
    row(id, scenario, sessionOk(security) && helloOk && bigOk,
      `hello.txt ${JSON.stringify(hello.data.toString())}${helloOk ? '' : ' (WRONG)'}; big.bin 1 MiB in ${big.calls} READs (4 pipelined, largest reply ${big.largest / 1024} KiB) sha256 ${digest.slice(0, 16)} ${bigOk ? 'matches' : `!= ${BIG_SHA256.slice(0, 16)}`}; ${ms(t0).toFixed(0)} ms`,
      { cipher: security.cipher, offload: offloadOf(security) });
  } catch (error) {
    row(id, scenario, false, describeError(error));
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** MOUNT (plaintext, as the kernel client does too: rpc.mountd has no TLS) of an export's root. */
async function mount3(path) {
  const rpcb = RpcbindClient.create({ host: '127.0.0.1' });
  const port = await rpcb.getPort(100005, 3).finally(() => rpcb.close().catch(() => undefined));
  const client = new RpcClient({ host: '127.0.0.1', port, timeout: 20_000, auth });
  try {
    const res = await new MountClient_v3(client).MOUNTPROC3_MNT(path);
    if (res.fhs_status !== 0) {
      const error = new Error(`MOUNT ${path} failed: mountstat3 ${res.fhs_status}`);
      error.code = 'ERR_MNT3_STATUS';
      error.status = res.fhs_status;
      throw error;
    }
    return { fh: Buffer.from(res.mountinfo.fhandle), port };
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function read3Scenario() {
  const id = 'a-read-v3';
  const scenario = 'client -> nfsd: MOUNT, then NFSv3 LOOKUP/READ over TLS';
  const client = tlsClient(3);
  try {
    const t0 = process.hrtime.bigint();
    const { fh: root, port } = await mount3(`${EXPORT_ROOT}/tls`);
    const hello = await lookup3(client, root, 'hello.txt');
    const data = await read3(client, hello.fh, 0, 4096);
    const big = await lookup3(client, root, 'big.bin');
    const bigRead = await readAll((offset, count) => read3(client, big.fh, offset, count), BIG_SIZE, CHUNK);
    const digest = sha256([bigRead.data]);
    const security = client.connection.security;
    const helloOk = data.data.toString() === HELLO.tls;
    const bigOk = digest === BIG_SHA256 && Number(big.attributes?.size) === BIG_SIZE;
    row(id, scenario, sessionOk(security) && helloOk && bigOk,
      `MNT via mountd :${port} (plaintext); hello.txt ${JSON.stringify(data.data.toString())}${helloOk ? '' : ' (WRONG)'}; big.bin 1 MiB in ${bigRead.calls} READs (4 pipelined, largest reply ${bigRead.largest / 1024} KiB) sha256 ${digest.slice(0, 16)} ${bigOk ? 'matches' : `!= ${BIG_SHA256.slice(0, 16)}`}; ${ms(t0).toFixed(0)} ms`,
      { cipher: security.cipher, offload: offloadOf(security) });
  } catch (error) {
    row(id, scenario, false, describeError(error));
  } finally {
    await client.close().catch(() => undefined);
  }
}

// ---- scenario b: refusals ------------------------------------------------------------------------

async function plain4() {
  const id = 'b-plain-v4';
  const scenario = 'plaintext NFSv4 client -> tls-only export: refused by nfsd';
  const client = plainClient();
  try {
    let refusal;
    try {
      await compoundAfterGrace(client, [ops.putrootfh(), ops.lookup('tls'), ops.lookup('hello.txt'), ops.read(0, 4096)]);
    } catch (error) {
      refusal = error;
    }
    // Control: the same COMPOUND on the xprtsec=none export succeeds on the same connection.
    const control = await compoundAfterGrace(client, [ops.putrootfh(), ops.lookup('plain'), ops.lookup('hello.txt'), ops.read(0, 4096)]);
    const controlOk = control[3].data.toString() === HELLO.plain;
    row(id, scenario, refusal?.code === 'ERR_NFS4ERR_WRONGSEC' && controlOk,
      `tls export: ${refusal ? `${refusal.code} at ${refusal.operation}` : 'NOT REFUSED'}; control (xprtsec=none export): ${controlOk ? 'READ ok' : 'WRONG DATA'}`,
      { cipher: 'none', offload: 'none' });
  } catch (error) {
    row(id, scenario, false, describeError(error));
  } finally {
    await client.close().catch(() => undefined);
  }
}

async function plain3() {
  const id = 'b-plain-v3';
  const scenario = 'plaintext NFSv3 client -> tls-only export: refused by nfsd';
  const client = plainClient();
  try {
    let refusal;
    try {
      const { fh } = await mount3(`${EXPORT_ROOT}/tls`);
      await lookup3(client, fh, 'hello.txt');
    } catch (error) {
      refusal = error;
    }
    const { fh } = await mount3(`${EXPORT_ROOT}/plain`);
    const hello = await lookup3(client, fh, 'hello.txt');
    const controlOk = (await read3(client, hello.fh, 0, 4096)).data.toString() === HELLO.plain;
    const refused = refusal?.code === 'ERR_NFS3ERR_ACCES' || refusal?.code === 'ERR_NFS3ERR_PERM' || refusal?.code === 'ERR_MNT3_STATUS';
    row(id, scenario, refused && controlOk,
      `tls export: ${refusal ? `${refusal.code}${refusal.operation ? ` at ${refusal.operation}` : ''}` : 'NOT REFUSED'}; control (xprtsec=none export): ${controlOk ? 'READ ok' : 'WRONG DATA'}`,
      { cipher: 'none', offload: 'none' });
  } catch (error) {
    row(id, scenario, false, describeError(error));
  } finally {
    await client.close().catch(() => undefined);
  }
}

// ---- the CLI: rpctls probe -----------------------------------------------------------------------

function cli(args, timeoutMs = 30_000) {
  return new Promise((resolve) => {
    execFile(process.execPath, [`${REPO}bin/rpctls.js`, ...args], { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

async function cliProbeTls() {
  const id = 'a-cli-probe';
  const scenario = `rpctls probe ${NAME}:${NFS_PORT} --program 100003 --version 4 (kernel nfsd)`;
  const r = await cli(['probe', `${NAME}:${NFS_PORT}`, '--program', '100003', '--version', '4', '--ca', `${PKI}/ca.pem`, '--servername', NAME, '--json']);
  const j = parseJson(r.stdout);
  const ok = r.code === 0 && j?.starttls === true && j?.tls?.version === 'TLSv1.3' && j?.offload?.tx === true && j?.offload?.rx === true;
  row(id, scenario, ok,
    j ? `exit ${r.code}, starttls ${j.starttls}, ${j.tls?.version}, alpn ${j.tls?.alpn ?? 'none'}, auth ${j.tls?.authMode}, NULL ${j.nullRttMs} ms${j.error ? `, error ${JSON.stringify(j.error)}` : ''}`
      : `exit ${r.code}, no JSON: ${(r.stdout + r.stderr).trim().slice(0, 300)}`,
    { cipher: j?.tls?.cipher ?? '-', offload: j?.offload ? (j.offload.tx && j.offload.rx ? 'kernel tx+rx' : `userspace (${j.offload.reason})`) : '-' });
}

async function cliProbePlain() {
  const id = 'b-cli-probe';
  const scenario = 'rpctls probe 127.0.0.1:111 --program 100000 --version 4 (rpcbind: no TLS)';
  const r = await cli(['probe', '127.0.0.1:111', '--program', '100000', '--version', '4', '--json']);
  const j = parseJson(r.stdout);
  const human = await cli(['probe', '127.0.0.1:111', '--program', '100000', '--version', '4']);
  const text = human.stdout + human.stderr;
  const probeLine = text.split('\n').find((l) => /AUTH_TLS probe/.test(l))?.trim().replace(/\s+/g, ' ');
  // Exit 4 is probe's "no STARTTLS" (3 unreachable, 5 handshake/verification).
  const ok = r.code === 4 && j?.starttls === false && human.code === 4 && /no STARTTLS/.test(text);
  row(id, scenario, ok,
    `exit ${r.code} (text mode exit ${human.code}), json starttls ${j?.starttls}, error ${j?.error?.code ?? JSON.stringify(j?.error)}; says: ${JSON.stringify(probeLine ?? text.trim().slice(0, 160))}`,
    { cipher: 'none', offload: 'none' });
}

// ---- the prebuilt addon the npm package ships, on this Debian's nodejs and its system OpenSSL --------

async function prebuiltAddon() {
  const id = 'b-prebuilt';
  const scenario = "the package's prebuilt linux-x64 addon (OpenSSL 3.0 headers) on Debian's nodejs: rpctls demo in kernel mode";
  const addon = '/interop-run/prebuilt/rpctls_native.node';
  if (!existsSync(addon)) return row(id, scenario, false, `${addon} is missing: run.sh could not build it (scripts/prebuild.mjs)`);
  const env = { ...process.env, RPCTLS_NATIVE_PATH: addon };
  const run = (args) =>
    new Promise((resolve) => {
      execFile(process.execPath, [`${REPO}bin/rpctls.js`, ...args], { timeout: 60_000, encoding: 'utf8', env }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      });
    });
  const version = await run(['--version']);
  const demo = await run(['demo', '--json']);
  const j = parseJson(demo.stdout);
  const ok = demo.code === 0 && j?.ok === true && j?.tls?.version === 'TLSv1.3' && j?.offload?.tx === true && j?.offload?.rx === true;
  row(id, scenario, ok,
    `${version.stdout.trim()}; demo exit ${demo.code}${j ? `, ok ${j.ok}, ${j.tls?.version}, auth ${j.tls?.authMode}` : `, no JSON: ${(demo.stdout + demo.stderr).trim().slice(0, 300)}`}`,
    { cipher: j?.tls?.cipher ?? '-', offload: j?.offload ? (j.offload.tx && j.offload.rx ? 'kernel tx+rx' : `userspace (${j.offload.reason})`) : '-' });
}

// ---- TLS 1.3 external PSK (the stand-in for NVMe/TCP, which these kernels lack) ----------------------

async function pskOpenssl() {
  const id = 'b-psk';
  const scenario = 'library psk client -> openssl s_server -psk -nocert (the stand-in for NVMe/TCP): TLS 1.3 external PSK, then kernel TLS';
  const key = createHash('sha256').update('rpctls interop psk').digest();
  const identity = 'NVMe0R01 nqn.2014-08.org.nvmexpress:uuid:interop nqn.rpctls:interop';
  const server = spawn('openssl', ['s_server', '-tls1_3', '-accept', '127.0.0.1:0', '-nocert', '-psk', key.toString('hex'), '-psk_identity', identity, '-num_tickets', '0', '-rev', '-naccept', '1']);
  let output = '';
  server.stderr.on('data', (d) => (output += d));
  try {
    const port = await new Promise((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`s_server printed no port: ${text}${output}`)), 10_000);
      server.stdout.on('data', (d) => {
        text += d;
        const m = /ACCEPT\s+\S+:(\d+)\s/.exec(text);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const context = new TlsContext({ role: 'client', psk: { identity, key }, alpn: 'off', kernelTls: 'require' });
    const stream = await connectTlsStream(socket, { context, servername: 'localhost' });
    const info = stream.tlsInfo;
    const reply = new Promise((resolve) => {
      let text = '';
      const timer = setTimeout(() => resolve(text), 10_000);
      stream.on('data', (d) => {
        text += d;
        if (text.includes('olleh')) {
          clearTimeout(timer);
          resolve(text);
        }
      });
    });
    stream.write('hello\n');
    const text = await reply;
    stream.destroy();
    const ok = info.psk === true && info.peerCertificate === null && info.offload.tx && info.offload.rx && /olleh/.test(text);
    row(id, scenario, ok, `${info.version} ${info.cipher}, psk ${info.psk}, peer certificate ${info.peerCertificate ? 'present' : 'none'}; s_server -rev answered ${JSON.stringify(String(text).trim())}`,
      { cipher: info.cipher, offload: offloadOf(info) });
  } catch (error) {
    row(id, scenario, false, `${describeError(error)}; s_server: ${output.trim().slice(-300)}`);
  } finally {
    server.kill();
  }
}

// ---- scenario c: the kernel NFS client -> our servers --------------------------------------------

/** mount -t nfs -o vers=4.2,xprtsec=X,port=N NAME:/ MNT; resolves { code, output, ms }; unmounts if it mounted. */
function kernelMount(port, dir, xprtsec = 'tls') {
  return new Promise((resolve) => {
    execFileSync('mkdir', ['-p', dir]);
    const t0 = process.hrtime.bigint();
    execFile('timeout', ['60', 'mount', '-t', 'nfs', '-o', `vers=4.2,xprtsec=${xprtsec},port=${port},retry=0,soft,timeo=100,retrans=1`, `${NAME}:/`, dir],
      { encoding: 'utf8' }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        if (code === 0) execFile('umount', ['-f', dir], () => undefined);
        resolve({ code, output: `${stdout}${stderr}`.trim(), ms: ms(t0) });
      });
  });
}

/** A COMPOUND4res with a status and no results: how this stub declines every COMPOUND. */
function compoundStatus(args, status) {
  const tagLength = args.readUInt32BE(0);
  const tag = args.subarray(4, 4 + tagLength + ((4 - (tagLength % 4)) % 4));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(status);
  const tail = Buffer.alloc(4);
  return [head, args.subarray(0, 4), tag, tail];
}

async function kernelClientToLibraryServer() {
  const id = 'c-kclient-lib';
  const scenario = 'kernel NFS client (mount xprtsec=tls) -> library server (rpcTlsInterceptor)';
  const calls = [];
  const sessions = [];
  // createTlsServer's parts, with every call seen before the TLS interceptor answers it (probe included).
  const tlsIntercept = rpcTlsInterceptor({ cert: readFileSync(`${PKI}/server.pem`), key: readFileSync(`${PKI}/server.key`) });
  const server = new RpcServer({
    interceptCall(call, connection) {
      calls.push({ program: call.program, version: call.version, procedure: call.procedure, cred: call.cred.flavor, inTls: connection.security !== null });
      return tlsIntercept(call, connection);
    },
  });
  server.addProgram({
    program: NFS_PROGRAM,
    version: 4,
    // COMPOUND: NFS4ERR_MINOR_VERS_MISMATCH, so the kernel gives up right after EXCHANGE_ID.
    procedures: { 1: (args) => compoundStatus(args, 10021) },
  });
  const tlsErrors = [];
  let serverUlp = null;
  let port = 0;
  server.on('connection', (connection) => {
    connection.on('secure', (info) => {
      sessions.push(info);
      // d, server side: the kernel's view of our accepted socket while the session is up.
      const entries = ssEntries(port);
      serverUlp = entries.length > 0 ? ulpOf(entries[0]) : null;
    });
    connection.on('tlsError', (error) => tlsErrors.push(describeError(error)));
  });
  ({ port } = await server.listen({ host: '127.0.0.1', port: 0 }));
  const agentBefore = tlshdClientHandshakes();
  const mount = await kernelMount(port, '/mnt/c-lib');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const agent = tlshdClientHandshakes() - agentBefore;
  await server.close();
  const probe = calls.find((c) => c.procedure === 0 && c.cred === 7 && !c.inTls);
  const nullInTls = calls.find((c) => c.procedure === 0 && c.cred !== 7 && c.inTls);
  const compound = calls.find((c) => c.procedure === 1 && c.inTls);
  const session = sessions[0];
  const ok = probe && session && sessionOk(session) && nullInTls && compound && agent >= 1 && serverUlp !== null;
  row(id, scenario, ok,
    `received: ${calls.map((c) => `${c.procedure === 0 ? 'NULL' : `proc ${c.procedure}`}/v${c.version}/${FLAVORS[c.cred] ?? `flavor ${c.cred}`}${c.inTls ? ' in TLS' : ' plain'}`).join(', ') || 'nothing'}` +
      ` (COMPOUND answered NFS4ERR_MINOR_VERS_MISMATCH); ${session ? `${session.version} alpn ${session.alpn ?? 'none'} auth ${session.authMode}` : `no TLS session${tlsErrors.length ? ` (${tlsErrors.join('; ')})` : ''}`}` +
      `; tlshd (client side) handshakes ok: ${agent}; ss on our socket: ${serverUlp ?? 'NO tcp-ulp-tls'}` +
      `; mount exit ${mount.code} in ${mount.ms.toFixed(0)} ms: ${JSON.stringify(mount.output.split('\n').pop())}`,
    { cipher: session?.cipher, offload: offloadOf(session) });
}

async function kernelClientToCliServe() {
  const id = 'c-kclient-cli';
  const scenario = 'kernel NFS client (mount xprtsec=tls) -> rpctls serve --tls --program 100003:4';
  const child = spawn(process.execPath, [`${REPO}bin/rpctls.js`, 'serve', '--host', '127.0.0.1', '--port', '20049', '--tls',
    '--cert', `${PKI}/server.pem`, '--key', `${PKI}/server.key`, '--program', '100003:4'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const rl = createInterface({ input: child.stdout });
  const listening = new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 20_000);
    rl.on('line', (line) => {
      lines.push(line);
      if (/listening/i.test(line)) { clearTimeout(timer); resolve(true); }
    });
    child.on('exit', () => { clearTimeout(timer); resolve(false); });
  });
  try {
    if (!(await listening)) {
      row(id, scenario, false, `serve did not print "listening" (exit ${child.exitCode}): ${(lines.join(' ') + stderr).trim().slice(0, 300)}`);
      return;
    }
    const before = tlsStat();
    const agentBefore = tlshdClientHandshakes();
    const mount = await kernelMount(20049, '/mnt/c-cli');
    const after = tlsStat();
    const agent = tlshdClientHandshakes() - agentBefore;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const logs = lines.filter((l) => /^conn /.test(l));
    // serve logs each connection's events: the probe it answered, the TLS outcome, each call.
    const probeLine = logs.find((l) => /probe .*program=100003 version=4 .*answer=STARTTLS/.test(l));
    const tlsLine = logs.find((l) => / tls version=TLSv1\.3 /.test(l));
    const kernel = Boolean(tlsLine && /offload\.tx=true/.test(tlsLine) && /offload\.rx=true/.test(tlsLine));
    const nullLine = logs.find((l) => /call program=100003 version=4 procedure=0 .*tls=yes/.test(l));
    const later = logs.filter((l) => /call program=100003 version=4 procedure=[1-9]/.test(l)).map((l) => /procedure=\d+.*$/.exec(l)[0]);
    const ok = Boolean(probeLine && tlsLine && kernel && nullLine) && after.TlsTxSw - before.TlsTxSw >= 2 && agent >= 1;
    row(id, scenario, ok,
      `probe answered STARTTLS: ${probeLine ? 'yes' : 'NO'}; TLS: ${tlsLine ? /version=\S+ cipher=\S+ alpn=\S+ authMode=\S+/.exec(tlsLine)?.[0] : 'NONE'}; ` +
        `NULL inside TLS: ${nullLine ? 'received and answered' : 'NOT SEEN'}; then: ${later.join(', ') || 'nothing'}; ` +
        `tls_stat TlsTxSw +${after.TlsTxSw - before.TlsTxSw}; tlshd (client side) handshakes ok: ${agent}; mount exit ${mount.code} in ${mount.ms.toFixed(0)} ms: ${JSON.stringify(mount.output.split('\n').pop())}`,
      { cipher: /cipher=(\S+)/.exec(tlsLine ?? '')?.[1] ?? '-', offload: tlsLine ? (kernel ? 'kernel tx+rx' : 'userspace') : '-' });
  } finally {
    child.kill('SIGTERM');
  }
}

// ---- sid (tlshd 1.4): mutual TLS both ways --------------------------------------------------------

async function mtlsOursToNfsd() {
  const id = 'mtls-ours-nfsd';
  const scenario = 'client with a certificate -> nfsd: NFSv4 READ of the xprtsec=mtls export (tlshd verifies us)';
  const withCert = tlsClient(4, NFS_PORT, { cert: readFileSync(`${PKI}/client.pem`), key: readFileSync(`${PKI}/client.key`) });
  const anonymous = tlsClient(4);
  try {
    const res = await compoundAfterGrace(withCert, [ops.putrootfh(), ops.lookup('mtls'), ops.lookup('hello.txt'), ops.read(0, 4096)]);
    const hello = res[3].data.toString();
    const security = withCert.connection.security;
    // Control: the same COMPOUND from an anonymous TLS session is refused.
    let refusal;
    try {
      await compoundAfterGrace(anonymous, [ops.putrootfh(), ops.lookup('mtls'), ops.lookup('hello.txt'), ops.read(0, 4096)]);
    } catch (error) {
      refusal = error;
    }
    const ok = sessionOk(security) && hello === `hello from ${EXPORT_ROOT}/mtls\n` && refusal?.code === 'ERR_NFS4ERR_WRONGSEC';
    row(id, scenario, ok,
      `hello.txt ${JSON.stringify(hello)}, ${security.version}, auth ${security.authMode}; control (anonymous TLS): ${refusal ? `${refusal.code} at ${refusal.operation}` : 'NOT REFUSED'}`,
      { cipher: security.cipher, offload: offloadOf(security) });
  } catch (error) {
    row(id, scenario, false, describeError(error));
  } finally {
    await withCert.close().catch(() => undefined);
    await anonymous.close().catch(() => undefined);
  }
}

async function mtlsKernelClientToOurs() {
  const id = 'mtls-kclient-ours';
  const scenario = 'kernel NFS client (mount xprtsec=mtls, tlshd presents its certificate) -> library server requiring one';
  const sessions = [];
  const tlsErrors = [];
  const server = new RpcServer({
    interceptCall: rpcTlsInterceptor({ cert: readFileSync(`${PKI}/server.pem`), key: readFileSync(`${PKI}/server.key`), ca, requireClientCert: true }),
  });
  server.addProgram({ program: NFS_PROGRAM, version: 4, procedures: { 1: (args) => compoundStatus(args, 10021) } });
  server.on('connection', (connection) => {
    connection.on('secure', (info) => sessions.push(info));
    connection.on('tlsError', (error) => tlsErrors.push(describeError(error)));
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  const mount = await kernelMount(port, '/mnt/mtls-ours', 'mtls');
  await server.close();
  const session = sessions[0];
  const peer = session?.peerX509?.subject ?? '';
  const ok = session && sessionOk(session) && session.authMode === 'mtls' && /client\.nfs\.test/.test(peer);
  row(id, scenario, ok,
    `${session ? `${session.version}, auth ${session.authMode}, client certificate ${JSON.stringify(peer.replace(/\n/g, ' '))}` : `no TLS session${tlsErrors.length ? ` (${tlsErrors.join('; ')})` : ''}`}` +
      `; mount exit ${mount.code} in ${mount.ms.toFixed(0)} ms (our stub answers COMPOUND NFS4ERR_MINOR_VERS_MISMATCH): ${JSON.stringify(mount.output.split('\n').pop())}`,
    { cipher: session?.cipher, offload: offloadOf(session) });
}

const SCENARIOS = {
  'null-v4': () => nullCall(4),
  'null-v3': () => nullCall(3),
  'read-v4': read4,
  'read-v3': read3Scenario,
  'cli-probe-tls': cliProbeTls,
  'plain-v4': plain4,
  'plain-v3': plain3,
  'cli-probe-plain': cliProbePlain,
  'prebuilt-addon': prebuiltAddon,
  'psk-openssl': pskOpenssl,
  'kclient-lib': kernelClientToLibraryServer,
  'kclient-cli': kernelClientToCliServe,
  // After these, tlshd is stopped: rpctls agent does the kernel's handshakes.
  ...AGENT_SCENARIOS,
  // sid only (run.sh): tlshd 1.4 does mtls on the stock kernel; then NFS-Ganesha (tlshd no longer needed).
  'mtls-ours-nfsd': mtlsOursToNfsd,
  'mtls-kclient-ours': mtlsKernelClientToOurs,
  ...GANESHA_SCENARIOS,
};

const name = process.argv[2];
if (!SCENARIOS[name]) {
  process.stderr.write(`usage: node scenarios.mjs <${Object.keys(SCENARIOS).join('|')}>\n`);
  process.exit(64);
}
await SCENARIOS[name]();
process.exit(failures() === 0 ? 0 : 1);
