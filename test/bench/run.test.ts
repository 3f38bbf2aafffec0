// `npm run bench` must keep working: its quick mode runs every group once, briefly, and prints JSON whose
// rows carry finite figures for rpctls and its baseline. Ratios are not asserted (a loaded test machine
// says nothing about speed); that every baseline is measured and named is.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';

import { libtirpcMissing } from '../helpers/libtirpc.js';
import { toolsPresent } from '../helpers/tools.js';

const run = promisify(execFile);

test('bench --quick --json: every group measured, each row with its baseline and a finite ratio', async (t) => {
  t.timeout(300_000);
  // The C client group needs libtirpc: missing under CI is a failure, elsewhere a logged skip.
  if (!toolsPresent(t, libtirpcMissing())) return;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--json'], {
    env: { ...process.env, BENCH_MS: '150', BENCH_HANDSHAKES: '5', BENCH_IDLE: '20' },
    maxBuffer: 16 * 1024 * 1024,
    timeout: 280_000,
  });
  const report = JSON.parse(stdout) as { node: string; rows: { group: string; name: string; rpctls: number; baseline: number; baselineName: string; ratio: number; runs: number[] }[] };
  t.is(report.node, process.version);
  const groups = new Set(report.rows.map((r) => r.group));
  t.deepEqual([...groups].sort(), ['c-client', 'memory', 'null', 'setup', 'tls', 'xdr']);
  for (const row of report.rows) {
    t.true(row.baselineName.length > 0, row.name);
    // Idle memory per connection can come out 0 or below when the GC returns more than the connections took.
    if (row.group !== 'memory') {
      t.true(Number.isFinite(row.rpctls) && row.rpctls > 0, `${row.name}: rpctls ${row.rpctls}`);
      t.true(Number.isFinite(row.baseline) && row.baseline > 0, `${row.name}: baseline ${row.baseline}`);
      t.true(Number.isFinite(row.ratio) && row.ratio > 0, `${row.name}: ratio ${row.ratio}`);
    }
    t.is(row.runs.length, 1);
  }
  t.true(report.rows.some((r) => r.name.startsWith('NULL, 1 connection x 64')));
  t.true(report.rows.some((r) => r.name.startsWith('C client ECHO 1 MiB')));
});
