/** stress.ts --trace: every pair of a sandboxed run classified from the kernel trace. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startScript } from '../../lib/core/childProcess.ts';
import { probeSandbox } from '../../lib/core/sandbox.ts';
import { probeTracefs } from '../../lib/trace/kernelTracepoint.ts';

const tracefs = probeTracefs();
const sandbox = probeSandbox();
// Privileged facilities may be missing on a developer's machine, never under CI.
const skipDemos = (!tracefs.ok || !sandbox.ok) && !process.env.CI;
if (skipDemos) console.log(`skipping stress --trace: ${tracefs.ok ? sandbox.reason : tracefs.reason}`);

describe.skipIf(skipDemos)('stress.ts --trace', () => {
  it('classifies every pair from the kernel trace: counts in report and JSON, kinds in each log record', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-trace-'));
    try {
      const json = path.join(dir, 'result.json');
      const log = path.join(dir, 'pairs.ndjson');
      const child = startScript(
        'scripts/stress.ts',
        ['--pairs', '50', '--trace', '--quiet', '--json', json, '--log', log],
        { stdin: 'ignore' },
      );
      const run = { code: await child.exited, stdout: child.stdout(), stderr: child.stderr() };
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^ {2}open kinds {5}/m);
      expect(run.stdout).toMatch(/^ {2}trace {10}kernel tracepoint sock:inet_sock_set_state/m);
      const result = JSON.parse(fs.readFileSync(json, 'utf8'));
      expect(result.trace).toMatchObject({ source: 'kernel', lostEvents: 0 });
      const opened = result.openKinds.crossed + result.openKinds['one-sided'];
      // Every pair is a simultaneous open: a listener anywhere would show as not-simultaneous.
      expect(opened).toBe(50);
      expect(result.openKinds['not-simultaneous']).toBe(0);
      expect(Object.values(result.closeKinds as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(100);
      const records = fs
        .readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(records).toHaveLength(50);
      for (const record of records) {
        expect(['crossed', 'one-sided']).toContain(record.openKind);
        // graceful close: A sends the first FIN.
        expect(record.closeKinds).toEqual(['active', 'passive']);
      }
      expect(fs.readdirSync(dir).sort()).toEqual(['pairs.ndjson', 'result.json']);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});
