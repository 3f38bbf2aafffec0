// A server in a child process that announces itself with one stdout line (its ports): waiting for that
// line with a deadline, failing with the child's stderr when it exits or stays silent, and stopping it
// (SIGTERM, SIGKILL after 5 s). Used by the libtirpc peer and the benchmarks' `rpctls serve`.
import type { ChildProcess } from 'node:child_process';

const READY_TIMEOUT_MS = 20_000;
const CLOSE_KILL_MS = 5000;

export interface ReadyChild {
  /** The ready line's match. */
  match: RegExpExecArray;
  pid: number;
  /** Stops the child and resolves once it has exited; `after` runs then (close its stdin, say). */
  close(): Promise<void>;
}

export async function awaitReadyLine(child: ChildProcess, pattern: RegExp, name: string, after?: () => void): Promise<ReadyChild> {
  const out = child.stdout!;
  const err = child.stderr!;
  let stdout = '';
  let stderr = '';
  out.setEncoding('utf8');
  err.setEncoding('utf8');
  err.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const fail = (why: string): void => {
      cleanup();
      child.kill('SIGKILL');
      reject(new Error(`${name}: ${why}; stderr: ${stderr.trim() || '(empty)'}`));
    };
    const onData = (chunk: string): void => {
      stdout += chunk;
      const m = pattern.exec(stdout);
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    // Let the last stderr chunk arrive before reporting.
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      setImmediate(() => fail(`exited (${signal ?? `code ${code}`}) before it was ready`));
    };
    const onError = (error: Error): void => fail(`could not start: ${error.message}`);
    const timer = setTimeout(() => fail(`no ready line within ${READY_TIMEOUT_MS / 1000} s (stdout: ${JSON.stringify(stdout)})`), READY_TIMEOUT_MS);
    const cleanup = (): void => {
      clearTimeout(timer);
      out.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    out.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
  out.resume(); // what follows (a log line per connection) must never fill the pipe

  let closing: Promise<void> | undefined;
  return {
    match,
    pid: child.pid as number,
    close(): Promise<void> {
      closing ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), CLOSE_KILL_MS);
          await exited;
          clearTimeout(timer);
        }
        after?.();
      })();
      return closing;
    },
  };
}
