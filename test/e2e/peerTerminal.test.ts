/**
 * peer.ts on a real terminal (a pty made by script(1)): a typed line longer than the terminal's
 * canonical-mode limit (4095 bytes) arrives whole, and Ctrl-C typed as a key (raw mode: no signal
 * from the terminal) still interrupts with 130.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Child, startChild } from '../../lib/core/childProcess.ts';
import { freePorts } from '../helpers/freePorts.ts';
import { repoRoot, runScript } from '../helpers/runScript.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('peer.ts on a terminal', () => {
  it('a 5,000-character typed line arrives whole; Ctrl-C ends the chat with 130', async () => {
    const [typistPort, readerPort] = (await freePorts(2)) as [number, number];
    const command = `"${process.execPath}" --import tsx scripts/peer.ts 127.0.0.1 ${readerPort} --local-port ${typistPort}`;
    // -e: script exits with peer.ts's code; -f: output as it comes; the transcript is not kept.
    const typist = startChild('script', ['-q', '-f', '-e', '-c', command, '/dev/null'], { cwd: repoRoot });
    cleanups.push(() => typist.process.kill('SIGKILL'));
    const reader: Child = runScript('peer', [
      '127.0.0.1',
      String(typistPort),
      '--local-port',
      String(readerPort),
    ]);
    cleanups.push(() => reader.process.kill('SIGKILL'));
    await reader.waitFor(/connected after/);
    await expect.poll(() => typist.stdout(), { timeout: 60_000 }).toMatch(/connected after/);

    const long = `${'0123456789'.repeat(499)}end!`;
    expect(long).toHaveLength(4994);
    // Enter on a terminal is a carriage return.
    typist.process.stdin?.write(`${long}\r`);
    await reader.waitFor(/end!\n/);
    expect(reader.stdout()).toBe(`peer> ${long}\n`);

    typist.process.stdin?.write('\u0003');
    expect(await typist.exited).toBe(130);
    expect(typist.stdout()).toContain('interrupted (SIGINT): closing the connection');
    expect(await reader.exited).toBe(0);
    expect(reader.stderr()).toContain('peer closed the connection');
  });
});
