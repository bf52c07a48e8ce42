import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startScript } from '../../lib/core/childProcess.ts';
import { DialError, dialSimultaneous } from '../../lib/peer/dialSimultaneous.ts';
import { freePort, freePorts } from '../helpers/freePorts.ts';

// Ports that reach a socket come from freePorts (this run's own); the fixed numbers left below are
// refused before any socket exists (invalid, self-connect, already aborted).

async function dialError(promise: Promise<unknown>): Promise<DialError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DialError);
    return error as DialError;
  }
  throw new Error('the dial succeeded but should have failed');
}

/** TCP sockets on this local port, as the kernel's socket table lists them. */
function socketsOnPort(port: number): string[] {
  return execFileSync('ss', ['-tanH', `sport = :${port}`], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.trim());
}

function dialInOtherProcess(local: [string, number], remote: [string, number]) {
  const child = startScript('test/fixtures/dialOnce.ts', [
    local[0],
    String(local[1]),
    remote[0],
    String(remote[1]),
  ]);
  return { child, output: () => child.stdout(), exited: child.exited };
}

describe('dialSimultaneous', () => {
  it('fails at the deadline with no peer, naming the attempts and the errors seen', async () => {
    const [local, remote] = (await freePorts(2)) as [number, number];
    const error = await dialError(
      dialSimultaneous({
        local: { host: '127.0.0.1', port: local },
        remote: { host: '127.0.0.1', port: remote },
        deadlineMs: 300,
      }),
    );
    expect(error.code).toBe('EDEADLINE');
    expect(error.attempts).toBeGreaterThan(0);
    expect(error.errors.ECONNREFUSED).toBeGreaterThan(0);
    expect(error.message).toContain(`${error.attempts} attempts`);
    expect(error.message).toContain('ECONNREFUSED');
    expect(socketsOnPort(local)).toEqual([]);
  });

  it('fails at once when a listener holds the local port (EADDRINUSE)', async () => {
    const [local, remote] = (await freePorts(2)) as [number, number];
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(local, '127.0.0.1', resolve));
    try {
      const error = await dialError(
        dialSimultaneous({
          local: { host: '127.0.0.1', port: local },
          remote: { host: '127.0.0.1', port: remote },
          deadlineMs: 10_000,
        }),
      );
      expect(error.code).toBe('EADDRINUSE');
      expect(error.attempts).toBe(1);
      expect(error.message).toMatch(/in use/);
    } finally {
      server.close();
    }
  });

  it('fails at once on a local address this host does not have (EADDRNOTAVAIL)', async () => {
    // 192.0.2.1 is TEST-NET-1: documentation only, never assigned here. No packet is sent.
    const [local, remote] = (await freePorts(2)) as [number, number];
    const error = await dialError(
      dialSimultaneous({
        local: { host: '192.0.2.1', port: local },
        remote: { host: '127.0.0.1', port: remote },
        deadlineMs: 10_000,
      }),
    );
    expect(error.code).toBe('EADDRNOTAVAIL');
    expect(error.attempts).toBe(0);
    expect(error.message).toContain('192.0.2.1');
  });

  it.each([
    [0, 20131],
    [20130, 0],
    [70000, 20131],
    [20130, 65536],
    [1.5, 20131],
    [-1, 20131],
  ])('refuses invalid ports (local %s, remote %s)', async (localPort, remotePort) => {
    const error = await dialError(
      dialSimultaneous({
        local: { host: '127.0.0.1', port: localPort },
        remote: { host: '127.0.0.1', port: remotePort },
      }),
    );
    expect(error.code).toBe('EINVAL');
    expect(error.message).toMatch(/invalid (local|remote) port/);
  });

  it('refuses an invalid host name', async () => {
    const [local, remote] = (await freePorts(2)) as [number, number];
    const error = await dialError(
      dialSimultaneous({ local: { port: local }, remote: { host: 'no-such-host.invalid', port: remote } }),
    );
    expect(error.code).toBe('EINVAL');
    expect(error.message).toContain('no-such-host.invalid');
  });

  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['0.0.0.0', '127.0.0.1'],
    [undefined, '127.0.0.1'],
    ['::1', '::1'],
  ])('refuses a self-connect (local %s, remote %s, same port)', async (localHost, remoteHost) => {
    const error = await dialError(
      dialSimultaneous({
        local: { host: localHost, port: 20140 },
        remote: { host: remoteHost, port: 20140 },
      }),
    );
    expect(error.code).toBe('ESELFCONNECT');
    expect(error.attempts).toBe(0);
  });

  it('cancels on abort, leaving no socket behind', async () => {
    const [local, remote] = (await freePorts(2)) as [number, number];
    const controller = new AbortController();
    const dialing = dialSimultaneous({
      local: { host: '127.0.0.1', port: local },
      remote: { host: '127.0.0.1', port: remote },
      deadlineMs: 60_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 100);
    const error = await dialError(dialing);
    expect(error.code).toBe('ABORT_ERR');
    expect(error.attempts).toBeGreaterThan(0);
    // Let the destroyed socket's close reach the kernel.
    await new Promise((resolve) => setImmediate(resolve));
    expect(socketsOnPort(local)).toEqual([]);
  });

  it('refuses an already aborted signal before any attempt', async () => {
    const error = await dialError(
      dialSimultaneous({
        local: { host: '127.0.0.1', port: 20155 },
        remote: { host: '127.0.0.1', port: 20156 },
        signal: AbortSignal.abort(),
      }),
    );
    expect(error.code).toBe('ABORT_ERR');
    expect(error.attempts).toBe(0);
  });

  it.each([['127.0.0.1'], ['::1']])(
    'opens a connection with a peer in another process on %s (both retry until they meet)',
    async (host) => {
      const a = await freePort(host);
      const b = await freePort(host);
      const other = dialInOtherProcess([host, b], [host, a]);
      const result = await dialSimultaneous({
        local: { host, port: a },
        remote: { host, port: b },
        deadlineMs: 20_000,
      });
      const { socket } = result;
      expect(result.attempts).toBeGreaterThanOrEqual(1);
      expect(socket.localPort).toBe(a);
      expect(socket.remotePort).toBe(b);
      expect(socket.remoteAddress).toBe(host);
      // A line goes over and comes back: a real peer, not a self-connect.
      socket.setEncoding('utf8');
      const echoed = new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (chunk: string) => {
          text += chunk;
        });
        socket.on('end', () => resolve(text));
      });
      socket.write('ping\n');
      expect(await echoed).toBe('echo:ping\n');
      socket.end();
      expect(await other.exited).toBe(0);
      const theirs = JSON.parse(other.output().trim().split('\n')[0] ?? '{}');
      expect(theirs).toMatchObject({ localPort: b, remotePort: a, remoteAddress: host });
      // Nobody listened: no socket on either port was ever in LISTEN.
      expect(
        socketsOnPort(a)
          .concat(socketsOnPort(b))
          .some((line) => line.startsWith('LISTEN')),
      ).toBe(false);
    },
  );
});
