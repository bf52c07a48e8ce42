/** lib/core/childProcess.ts with real processes: output, lines, exit codes, and tied children. */
import { describe, expect, it } from 'vitest';
import {
  isAlive,
  runChild,
  signalRunningChildren,
  startChild,
  startScript,
} from '../../lib/core/childProcess.ts';

describe('child processes', () => {
  it('collect both streams as text and as lines, and report the exit code the shell way', async () => {
    const run = await runChild('sh', ['-c', 'echo out; echo err >&2; printf partial; exit 3']);
    expect(run).toEqual({ code: 3, stdout: 'out\npartial', stderr: 'err\n' });
    const child = startChild('sh', ['-c', 'echo one; echo two >&2; exec sleep 60']);
    expect(await child.waitForLine(/^tw/)).toBe('two');
    await child.waitFor(/one\n/);
    expect(child.output).toEqual(['one', 'two']);
    expect(child.running()).toBe(true);
    expect(await child.stop()).toBe(143);
    expect(child.running()).toBe(false);
  });

  it('a grandchild holding the output pipes does not hold back the exit code', async () => {
    const child = startChild('sh', ['-c', 'sleep 30 & echo $!']);
    const code = await child.exited;
    const grandchild = Number(child.stdout().trim());
    try {
      expect(code).toBe(0);
      expect(isAlive(grandchild)).toBe(true);
    } finally {
      process.kill(grandchild, 'SIGKILL');
    }
  });

  it('waiting for a line fails when the child exits first, or at the bound, saying what it saw', async () => {
    const quick = startChild('sh', ['-c', 'echo bye; exit 5']);
    await expect(quick.waitForLine(/never/)).rejects.toThrow(
      /exited 5 before printing line matching \/never\/; last lines: bye/,
    );
    const slow = startChild('sleep', ['60']);
    await expect(slow.waitFor(/never/, 200)).rejects.toThrow(/no output matching \/never\/ within 200 ms/);
    expect(await slow.stop('SIGKILL')).toBe(137);
  });

  it('a command that cannot start rejects `exited` and every wait', async () => {
    const missing = startChild('/nonexistent/simopen-command', []);
    await expect(missing.exited).rejects.toThrow(/ENOENT/);
    await expect(missing.waitForLine(/x/)).rejects.toThrow(/ENOENT/);
  });

  it('signalRunningChildren reaches every running child', async () => {
    const children = [startChild('sleep', ['60']), startChild('sleep', ['60'])];
    expect(signalRunningChildren('SIGTERM')).toBeGreaterThanOrEqual(2);
    expect(await Promise.all(children.map((child) => child.exited))).toEqual([143, 143]);
  });

  it('a tied child ends when its parent is killed with SIGKILL; an untied one runs on', async () => {
    const parent = startScript('test/fixtures/tiedParent.ts', []);
    const line = await parent.waitForLine(/^tied \d+ untied \d+$/);
    const [tied, untied] = (line.match(/\d+/g) ?? []).map(Number) as [number, number];
    expect(isAlive(tied) && isAlive(untied)).toBe(true);
    expect(await parent.stop('SIGKILL')).toBe(137);
    try {
      await expect.poll(() => isAlive(tied), { timeout: 10_000, interval: 50 }).toBe(false);
      expect(isAlive(untied)).toBe(true);
    } finally {
      process.kill(untied, 'SIGKILL');
    }
  });
});
