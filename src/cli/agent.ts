/**
 * `rpctls agent [--config <file>] [--once]`: the kernel's TLS handshake agent (what tlshd does), in the
 * foreground. Logs JSON lines on stderr; SIGHUP reloads the configuration; SIGINT/SIGTERM stop it
 * after the handshakes in progress.
 */
import { HandshakeAgent } from '../agent/agent.js';
import { loadAgentConfig, resolveConfigPath } from '../agent/config.js';
import { accessors, parseArgs } from './args.js';
import { Exit, printError, usageExit } from './common.js';

export const AGENT_USAGE = `usage: rpctls agent [--config <file>] [--once]

Serves the Linux kernel's TLS handshake requests (netlink family "handshake", the tlshd role) for
sockets the kernel itself opened, e.g. NFS mounts and exports with xprtsec=tls: runs each TLS 1.3
handshake and installs kernel TLS on the socket. Run it as root (CAP_NET_ADMIN), with tlshd stopped.

  --config <file>   tlshd-format configuration: [authenticate.client] and [authenticate.server] with
                    x509.truststore, x509.crl, x509.certificate, x509.private_key; [debug] loglevel, keylog.
                    Default: /etc/tlshd/config (tlshd 1.4), else the old /etc/tlshd.conf (with a
                    warning). Unknown keys are warned about, with the nearest known key
  --once            serve one handshake, then exit (0 if it succeeded)

Logs one JSON line per event on stderr. SIGHUP re-reads the configuration; SIGINT/SIGTERM stop after the
handshakes in progress.
Exit status: 0 stopped (or --once succeeded); 1 failed (no kernel support, no permission, a --once
handshake failed); 2 usage or configuration error.
`;

export async function runAgent(argv: readonly string[]): Promise<number> {
  let file: string;
  let once: boolean;
  try {
    const parsed = parseArgs('agent', argv, { config: { type: 'string', value: '<file>' }, once: { type: 'boolean' } }, { max: 0 });
    if (parsed.help) {
      process.stdout.write(AGENT_USAGE);
      return Exit.OK;
    }
    const flags = accessors(parsed);
    const resolved = resolveConfigPath(flags.str('config'));
    file = resolved.file;
    if (resolved.warning !== undefined) {
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'warn', msg: resolved.warning })}\n`);
    }
    once = flags.bool('once');
  } catch (error) {
    return usageExit(error);
  }
  let config;
  try {
    config = loadAgentConfig(file);
  } catch (error) {
    process.stderr.write(`rpctls agent: ${(error as Error).message}\n`);
    return Exit.USAGE;
  }
  let agent: HandshakeAgent;
  try {
    agent = await HandshakeAgent.start({ config, once });
  } catch (error) {
    const e = error as { code?: string; errnoName?: string };
    if (e.code === 'ERR_NETLINK_NO_FAMILY') {
      process.stderr.write('rpctls agent: this kernel has no TLS handshake upcall (net/handshake, Linux >= 6.4 with CONFIG_NET_HANDSHAKE)\n');
    } else if (e.errnoName === 'EPERM') {
      process.stderr.write('rpctls agent: the kernel refused ACCEPT (EPERM): run as root or with CAP_NET_ADMIN\n');
    }
    printError(error);
    return Exit.FAILURE;
  }
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg: 'stopping', signal })}\n`);
      void agent.close().then(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const onHup = (): void => {
    try {
      agent.reload(loadAgentConfig(file));
    } catch (error) {
      // A broken edit must not take the agent down: keep serving with the configuration it has.
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'reload failed; keeping the previous configuration', error: (error as Error).message })}\n`);
    }
  };
  process.on('SIGHUP', onHup);
  try {
    if (once) {
      const outcome = await Promise.race([agent.onceResult!, stopped.then(() => null)]);
      await agent.close();
      return outcome !== null && outcome.status === 0 ? Exit.OK : Exit.FAILURE;
    }
    await stopped;
    return Exit.OK;
  } finally {
    process.off('SIGHUP', onHup);
  }
}
