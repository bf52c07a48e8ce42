/**
 * rendezvous.ts as a process: its log escapes what clients send, every signal stops it with 130,
 * a closed stdout stops it with 0, and --help names every option and exit code. Ephemeral ports.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Child, startChild } from '../../lib/core/childProcess.ts';
import { PROTOCOL_VERSION } from '../../lib/rendezvous/protocol.ts';
import { controlCharacters } from '../helpers/controlCharacters.ts';
import { RawClient } from '../helpers/rawRendezvousClient.ts';
import { repoRoot, runScript } from '../helpers/runScript.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const LISTENING = / listening on=127\.0\.0\.1:(\d+) probe=/;

async function startServer(extra: string[] = []): Promise<{ server: Child; port: number }> {
  const server = runScript('rendezvous', ['--listen', '127.0.0.1:0', ...extra]);
  cleanups.push(() => server.process.kill('SIGKILL'));
  await server.waitFor(LISTENING);
  return { server, port: Number(LISTENING.exec(server.stdout())?.[1]) };
}

function client(port: number): RawClient {
  const made = new RawClient(port);
  cleanups.push(() => made.destroy());
  return made;
}

describe('rendezvous.ts', () => {
  it('escapes control characters a client sends before they reach the log', async () => {
    const { server, port } = await startServer();
    const a = client(port);
    const b = client(port);
    a.register('esc', 'pw', 'alice');
    b.register('esc', 'pw', 'bob');
    await Promise.all([a.waitFor('peer'), b.waitFor('peer')]);
    a.send({
      v: PROTOCOL_VERSION,
      type: 'result',
      ok: false,
      elapsedMs: 1,
      attempts: 1,
      error: 'x\u001b[2K\u001b[1Gforged\u0000\nfake line',
    });
    await server.waitFor(/ result client=\d+ /);
    expect(server.stdout()).toContain('error="x\\u001b[2K\\u001b[1Gforged\\u0000\\u000afake line"');
    // Nothing but printable text and the newlines that end log lines.
    expect(controlCharacters(server.stdout())).toEqual([]);
  });

  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)(
    'stops on %s with exit 130, saying so',
    async (signal) => {
      const { server } = await startServer();
      server.process.kill(signal);
      expect(await server.exited).toBe(130);
      expect(server.stdout()).toContain(`stopped signal=${signal}`);
    },
  );

  it('| head -1: stops at its next log line with exit 0, no stack trace', async () => {
    const command = `"${process.execPath}" --import tsx scripts/rendezvous.ts --listen 127.0.0.1:0 | head -1; echo "rendezvous-exit=\${PIPESTATUS[0]}" >&2`;
    const shell = startChild('bash', ['-c', command], { cwd: repoRoot, stdin: 'ignore' });
    cleanups.push(() => shell.process.kill('SIGKILL'));
    await expect.poll(() => shell.stdout(), { timeout: 60_000 }).toMatch(LISTENING);
    // head has printed its one line and exited: the next event (this connection) meets a closed pipe.
    const port = Number(LISTENING.exec(shell.stdout())?.[1]);
    await expect
      .poll(
        async () => {
          client(port);
          await new Promise((resolve) => setTimeout(resolve, 100));
          return shell.stderr();
        },
        { timeout: 60_000 },
      )
      .toContain('rendezvous-exit=');
    expect(await shell.exited).toBe(0);
    expect(shell.stderr()).toMatch(/^rendezvous: stdout closed \(EPIPE\): stopped\n/m);
    expect(shell.stderr()).toContain('rendezvous-exit=0');
    expect(shell.stderr()).not.toMatch(/Error|\n\s+at /);
  });

  it('--help names every option and exit code', async () => {
    const help = runScript('rendezvous', ['--help']);
    expect(await help.exited).toBe(0);
    for (const option of [
      '--listen HOST:PORT',
      '--probe-port PORT|0',
      '--idle-timeout D',
      '--pair-timeout D',
      '-h, --help',
    ])
      expect(help.stdout()).toContain(option);
    const codes = help.stdout().slice(help.stdout().indexOf('exit codes:')).replace(/\s+/g, ' ');
    for (const code of [
      '0 stopped because stdout was closed',
      '1 cannot listen',
      '2 bad usage',
      '130 stopped by a signal (SIGINT, SIGTERM, SIGHUP)',
    ])
      expect(codes).toContain(code);
  });
});
