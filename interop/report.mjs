// Prints one target's interop table from the guest's rows and its count ("interop TARGET: N passed,
// N failed"; run.sh sums the targets); exits 1 on any failure.
//   node interop/report.mjs TARGET RESULTS.jsonl SCENARIOS(comma list) TIMINGS GUEST_EXIT UML_STATUS RUN_DIR
import { existsSync, readFileSync } from 'node:fs';

const [target, resultsPath, scenarioList, timings, guestExit, umlStatus, runDir] = process.argv.slice(2);
const rows = existsSync(resultsPath)
  ? readFileSync(resultsPath, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return { id: '?', scenario: 'unparsable row', ok: false, cipher: '-', offload: '-', detail: l.slice(0, 200) };
      }
    })
  : [];
for (const s of scenarioList.split(',').filter(Boolean)) {
  if (!rows.some((r) => r.run === s) && !rows.some((r) => r.id === 'setup')) {
    rows.push({ run: s, id: s, scenario: s, ok: false, cipher: '-', offload: '-', detail: 'no result from the guest' });
  }
}
if (guestExit === 'none') {
  let tail = '';
  try {
    tail = readFileSync(`${runDir}/console.log`, 'utf8').trim().split('\n').slice(-5).join(' / ');
  } catch {}
  rows.push({ id: 'guest', scenario: 'UML guest ran to completion', ok: false, cipher: '-', offload: '-', detail: `no exit code (linux.uml/timeout status ${umlStatus}); console: ${tail.slice(0, 400)}` });
} else if (guestExit !== '0' && rows.every((r) => r.ok)) {
  rows.push({ id: 'guest', scenario: 'UML guest ran to completion', ok: false, cipher: '-', offload: '-', detail: `guest exit ${guestExit}` });
}

const header = ['id', 'scenario', 'result', 'cipher', 'offload'];
const table = rows.map((r) => [r.id, r.scenario, r.ok ? 'PASS' : 'FAIL', r.cipher ?? '-', r.offload ?? '-']);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => String(t[i]).length)));
const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
const out = [`target ${target}:`, line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...table.map(line), '', 'details:'];
for (const r of rows) out.push(`  ${r.id}: ${r.detail}`);
out.push('', `timings: ${timings}`, `logs: ${runDir}/guest.log, ${runDir}/console.log`);
const passed = rows.filter((r) => r.ok).length;
const failed = rows.length - passed;
out.push(`interop ${target}: ${passed} passed, ${failed} failed`);
process.stdout.write(`${out.join('\n')}\n`);
process.exit(failed === 0 && rows.length > 0 ? 0 : 1);
