/** trace.ts --demo: the four paths on real sockets in a private namespace, as the kernel traced them. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startScript } from '../../lib/core/childProcess.ts';
import { probeSandbox } from '../../lib/core/sandbox.ts';
import { buildConnectionPaths, containsSequence } from '../../lib/trace/connectionPaths.ts';
import { instanceExists, probeTracefs, TRACEFS } from '../../lib/trace/kernelTracepoint.ts';
import type { TraceEvent } from '../../lib/trace/types.ts';

const tracefs = probeTracefs();
const sandbox = probeSandbox();
// Privileged facilities may be missing on a developer's machine, never under CI.
const skipDemos = (!tracefs.ok || !sandbox.ok) && !process.env.CI;
if (skipDemos) console.log(`skipping demo tests: ${tracefs.ok ? sandbox.reason : tracefs.reason}`);

async function runTrace(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = startScript('scripts/trace.ts', args, { stdin: 'ignore' });
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

const DEMOS = {
  'simultaneous-open': [
    ['CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED'],
    ['CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED'],
  ],
  'simultaneous-close': [
    ['ESTABLISHED', 'FIN_WAIT_1', 'CLOSING', 'TIME_WAIT'],
    ['ESTABLISHED', 'FIN_WAIT_1', 'CLOSING', 'TIME_WAIT'],
  ],
  'normal-open': [
    ['CLOSED', 'SYN_SENT', 'ESTABLISHED'],
    ['LISTEN', 'SYN_RECEIVED', 'ESTABLISHED'],
  ],
  'normal-close': [
    ['ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2', 'TIME_WAIT'],
    ['ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSED'],
  ],
} as const;

function hostNftRuleset(): string {
  try {
    return execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

describe.skipIf(skipDemos)(
  'trace.ts --demo: the four paths on real sockets, as the kernel traced them',
  () => {
    for (const [demo, expected] of Object.entries(DEMOS)) {
      it(`${demo}: both sides, exactly as listed; instance and nft rules gone afterwards`, async () => {
        const run = await runTrace(['--demo', demo, '--json']);
        expect(run.code, run.stderr).toBe(0);
        const result = JSON.parse(run.stdout);
        expect(result.matched).toBe(true);
        expect(result.triesNeeded).toBe(result.tries.length);
        const final = result.tries.at(-1);
        for (const [index, states] of expected.entries()) {
          const side = final.sides[index];
          expect(side.source).toBe('kernel');
          expect(
            containsSequence(side.states, states),
            `${side.states.join(' → ')} contains ${states.join(' → ')}`,
          ).toBe(true);
          // The same path, straight from the raw kernel events of that side.
          const raw = result.events.filter(
            (e: TraceEvent) =>
              e.type === 'state' && e.local.port === side.local.port && e.remote.port === side.remote.port,
          );
          expect(containsSequence(buildConnectionPaths(raw).at(-1)?.states ?? [], states)).toBe(true);
        }
        for (const instance of result.instances) expect(instanceExists(instance)).toBe(false);
        expect(result.nftAfter).not.toContain('simopen_hold');
        expect(hostNftRuleset()).not.toContain('simopen_hold');
        if (demo === 'simultaneous-open') expect(result.openKind).toBe('crossed');
        if (demo === 'simultaneous-close') {
          expect(result.closeKinds).toEqual(['simultaneous', 'simultaneous']);
          expect(result.timeWaitConfirmed).toEqual([
            { side: 0, confirmed: true },
            { side: 1, confirmed: true },
          ]);
        }
        if (demo === 'normal-close' || demo === 'simultaneous-close') {
          // Opened by one thread with the early RST dropped, hole-punch style: A's first SYN met a closed
          // port (its RST dropped), B's SYN then met A in SYN_SENT. Only A passes SYN_RECEIVED.
          expect(result.openKind).toBe('one-sided');
          const opens = [
            ['CLOSED', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED'],
            ['CLOSED', 'SYN_SENT', 'ESTABLISHED'],
          ] as const;
          for (const [index, states] of opens.entries())
            expect(containsSequence(final.sides[index].states, states)).toBe(true);
        }
        if (demo === 'normal-close') {
          expect(result.closeKinds).toEqual(['active', 'passive']);
        }
        if (demo === 'normal-open') expect(result.openKind).toBe('not-simultaneous');
      });
    }

    it('prints the done-means lines in text form', async () => {
      const run = await runTrace(['--demo', 'simultaneous-open']);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/path shown by the kernel trace after \d+ tr(y|ies)/);
      expect(
        run.stdout.match(/CLOSED → SYN_SENT \+\d+µs → SYN_RECEIVED \+\d+µs → ESTABLISHED/g),
      ).toHaveLength(2);
      expect(
        fs.readdirSync(path.join(TRACEFS, 'instances')).filter((name) => name.includes(`-${process.pid}-`)),
      ).toEqual([]);
    });
  },
);
