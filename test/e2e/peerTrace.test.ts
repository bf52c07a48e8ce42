/** peer.ts --trace: two real peers on ports this run owns, their connection as the kernel traced it. */
import { describe, expect, it } from 'vitest';
import { startScript } from '../../lib/core/childProcess.ts';
import { containsSequence } from '../../lib/trace/connectionPaths.ts';
import { probeTracefs } from '../../lib/trace/kernelTracepoint.ts';
import type { TcpState } from '../../lib/trace/types.ts';
import { freePorts } from '../helpers/freePorts.ts';

const tracefs = probeTracefs();
// Privileged facilities may be missing on a developer's machine, never under CI.
const skipKernel = !tracefs.ok && !process.env.CI;
if (skipKernel) console.log(`skipping kernel trace tests: ${tracefs.reason}`);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** input undefined: keep stdin open, so this side ends only when the peer closes. */
async function runPeer(args: string[], input?: string[]): Promise<Run> {
  const child = startScript('scripts/peer.ts', args);
  // Type the lines once connected; the last one is /quit (or end of input) from one side.
  if (input)
    child.waitFor(/connected/).then(
      () => child.process.stdin?.end(input.map((line) => `${line}\n`).join('')),
      () => {},
    );
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

describe.skipIf(skipKernel)('peer.ts --trace', () => {
  it("prints the chat connection's state changes, from the kernel, for both peers", async () => {
    // A quits after sending; B answers the FIN. Host loopback: the dial is a race of retries.
    const [portA, portB] = (await freePorts(2)) as [number, number];
    const [a, b] = await Promise.all([
      runPeer(
        ['127.0.0.1', String(portB), '--local-port', String(portA), '--trace', '--linger', '10s'],
        ['hello', '/quit'],
      ),
      runPeer(['127.0.0.1', String(portA), '--local-port', String(portB), '--trace', '--linger', '10s']),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toContain('peer> hello');
    const statesOf = (run: Run, local: number, remote: number) => {
      expect(run.stderr).toContain('trace: source: kernel tracepoint sock:inet_sock_set_state');
      const changes = [...run.stderr.matchAll(/^trace: \+\d+µs (\S+) > (\S+) {2}(\w+) → (\w+)/gm)];
      expect(changes.length).toBeGreaterThan(0);
      for (const change of changes) {
        expect(change[1]).toBe(`127.0.0.1:${local}`);
        expect(change[2]).toBe(`127.0.0.1:${remote}`);
      }
      return [changes[0]?.[3], ...changes.map((change) => change[4])] as TcpState[];
    };
    const statesA = statesOf(a, portA, portB);
    const statesB = statesOf(b, portB, portA);
    for (const states of [statesA, statesB]) {
      expect(states.slice(0, 2)).toEqual(['CLOSED', 'SYN_SENT']);
      expect(states).toContain('ESTABLISHED');
    }
    // A quit first: the active close. B answered the FIN: the passive close.
    expect(containsSequence(statesA, ['ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2', 'TIME_WAIT'])).toBe(true);
    expect(containsSequence(statesB, ['ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK', 'CLOSED'])).toBe(true);
  });
});
