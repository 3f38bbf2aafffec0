import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

const RPCBIND_BINARIES = ['/usr/sbin/rpcbind', '/sbin/rpcbind'];

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Makes sure the real rpcbind (libtirpc) answers on 127.0.0.1:111, starting the system daemon when none
 * runs. It is left running, as a system service would be: test files run in parallel processes, and
 * one must not stop the rpcbind another is using. Throws, never skips, when rpcbind is not installed:
 * these tests are part of the acceptance.
 */
export async function ensureRpcbind(): Promise<void> {
  if (await portOpen(111)) return;
  const binary = RPCBIND_BINARIES.find((b) => existsSync(b));
  if (!binary) throw new Error('rpcbind is not installed: run `apt-get install rpcbind` (Debian) — .ci/run does this');
  // Another test process may be starting one at the same moment; whichever binds first serves both.
  const child: ChildProcess = spawn(binary, ['-f'], { stdio: 'ignore', detached: true });
  child.unref();
  const deadline = Date.now() + 5000;
  while (!(await portOpen(111))) {
    if (Date.now() > deadline) {
      throw new Error(`rpcbind did not listen on port 111 within 5 s (exit status ${child.exitCode}; it needs root)`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
