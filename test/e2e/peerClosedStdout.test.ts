/**
 * A closed stdout ends the chat cleanly: `peer.ts ... | head -1` (a real pipe and head) prints the
 * first line, then peer.ts says stdout closed, sends its FIN and exits 0, with no stack trace.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startChild } from '../../lib/core/childProcess.ts';
import { dialSimultaneous } from '../../lib/peer/dialSimultaneous.ts';
import { freePorts } from '../helpers/freePorts.ts';
import { repoRoot } from '../helpers/runScript.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('peer.ts with a closed stdout', () => {
  it('| head -1: the chat ends cleanly, exit 0', async () => {
    const [peerPort, ourPort] = (await freePorts(2)) as [number, number];
    const command = `"${process.execPath}" --import tsx scripts/peer.ts 127.0.0.1 ${ourPort} --local-port ${peerPort} | head -1; echo "peer-exit=\${PIPESTATUS[0]}" >&2`;
    const shell = startChild('bash', ['-c', command], { cwd: repoRoot });
    cleanups.push(() => shell.process.kill('SIGKILL'));

    const { socket } = await dialSimultaneous({
      local: { host: '127.0.0.1', port: ourPort },
      remote: { host: '127.0.0.1', port: peerPort },
      deadlineMs: 30_000,
    });
    cleanups.push(() => socket.destroy());
    socket.on('error', () => {});
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    // Lines until peer.ts closes its side: head takes the first and exits, a later one meets EPIPE.
    let sent = 0;
    const sender = setInterval(() => {
      sent += 1;
      if (socket.writable) socket.write(`line ${sent}\n`);
    }, 20);
    cleanups.push(() => clearInterval(sender));
    await ended;
    clearInterval(sender);
    expect(await shell.exited).toBe(0);
    expect(shell.stdout()).toBe('peer> line 1\n');
    expect(shell.stderr()).toMatch(/stdout closed \(EPIPE\); sent FIN/);
    expect(shell.stderr()).toContain('peer-exit=0');
    expect(shell.stderr()).not.toMatch(/Error|\n\s+at /);
  });
});
