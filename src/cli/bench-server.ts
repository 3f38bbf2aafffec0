/**
 * The server half of `rpctls bench`, run in a child process (fork) so the client's and the server's CPU
 * seconds are measured apart. IPC: the parent sends {mode, cert?, key?}; we answer {port}; {cmd:'cpu'}
 * gets {cpu: microseconds user+system}; {cmd:'exit'} closes and exits.
 */
import { RpcServer } from '../rpc/server.js';
import { createTlsServer } from '../rpc-tls/index.js';
import { TEST_PROGRAM_DEFINITION } from './common.js';

export interface BenchServerStart {
  mode: 'plain' | 'tls';
  cert?: string;
  key?: string;
}

/** Starts the bench server in this process; used by the child and by in-process runs (demo). */
export async function startBenchServer(start: BenchServerStart): Promise<{ server: RpcServer; port: number }> {
  const server =
    start.mode === 'tls'
      ? createTlsServer({ tls: { cert: start.cert as string, key: start.key as string } })
      : new RpcServer();
  server.addProgram(TEST_PROGRAM_DEFINITION);
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, port };
}

if (process.send !== undefined && process.env.RPCTLS_BENCH_CHILD === '1') {
  let server: RpcServer | null = null;
  process.on('message', (message: BenchServerStart | { cmd: 'cpu' | 'exit' }) => {
    void (async () => {
      if ('mode' in message) {
        const started = await startBenchServer(message);
        server = started.server;
        process.send?.({ port: started.port });
      } else if (message.cmd === 'cpu') {
        const u = process.cpuUsage();
        process.send?.({ cpu: u.user + u.system });
      } else {
        await server?.close();
        process.exit(0);
      }
    })();
  });
  // The parent died without saying goodbye: do not linger.
  process.on('disconnect', () => process.exit(0));
}
