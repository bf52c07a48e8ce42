import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { dialSimultaneous } from '../lib/peer/dialSimultaneous.ts';
import { runScript } from './helpers/runScript.ts';

// Host loopback ports for the foundation's tests: 20000-20999.

describe('peer.ts', () => {
  it('two peers find each other by retrying, chat both ways, and both exit 0 when one quits', async () => {
    const alice = runScript('peer', ['127.0.0.1', '20201', '--local-port', '20200', '--prefix', 'bob> ']);
    const bob = runScript('peer', ['127.0.0.1', '20200', '--local-port', '20201', '--prefix', 'alice> ']);
    await Promise.all([
      alice.waitFor(/connected after \d+ attempts/),
      bob.waitFor(/connected after \d+ attempts/),
    ]);
    expect(alice.stderr()).toContain('dialing 127.0.0.1:20201 from 0.0.0.0:20200 by simultaneous open');

    // Whole lines, UTF-8, repeated spaces, longer than the classic program's 128-byte buffer.
    const long = `${'wörds and  spaces ✓ '.repeat(60)}end`;
    alice.process.stdin?.write(`hello bob\n${long}\n`);
    bob.process.stdin?.write('hi alice, ünïcödé 🚀\n');
    await bob.waitFor(/✓ end\n/);
    await alice.waitFor(/bob> hi alice/);
    expect(bob.stdout()).toBe(`alice> hello bob\nalice> ${long}\n`);
    expect(alice.stdout()).toBe('bob> hi alice, ünïcödé 🚀\n');

    alice.process.stdin?.write('/quit\n');
    expect(await alice.exited).toBe(0);
    expect(await bob.exited).toBe(0);
    expect(bob.stderr()).toContain('peer closed the connection');
    expect(alice.stderr()).toMatch(/quit; sent FIN/);
  });

  it('end of input half-closes: the peer can still send until it closes', async () => {
    const alice = runScript('peer', ['127.0.0.1', '20211', '--local-port', '20210']);
    const bob = runScript('peer', ['127.0.0.1', '20210', '--local-port', '20211']);
    await Promise.all([alice.waitFor(/connected after/), bob.waitFor(/connected after/)]);
    alice.process.stdin?.end('last words\n');
    await alice.waitFor(/sent FIN/);
    await bob.waitFor(/peer> last words\n/);
    expect(await bob.exited).toBe(0);
    expect(await alice.exited).toBe(0);
    expect(alice.stderr()).toContain('peer closed the connection');
  });

  it('interoperates with socat as the other peer, lines both ways', async () => {
    const peer = runScript('peer', [
      '127.0.0.1',
      '20221',
      '--local-port',
      '20220',
      '--local-host',
      '127.0.0.1',
    ]);
    const socat = spawn(
      'socat',
      ['-', 'TCP:127.0.0.1:20220,bind=127.0.0.1:20221,reuseaddr,retry=200000,interval=0.0001'],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let fromPeer = '';
    socat.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      fromPeer += chunk;
    });
    const socatExited = new Promise<number | null>((resolve) => socat.once('close', resolve));
    await peer.waitFor(/connected after/);
    socat.stdin.write('hello from socat ✓\n');
    peer.process.stdin?.write('hello from simopen\n');
    await peer.waitFor(/peer> hello from socat ✓\n/);
    peer.process.stdin?.write('/quit\n');
    // socat sees our FIN, closes its side and exits; peer.ts then sees socat's FIN.
    expect(await socatExited).toBe(0);
    expect(await peer.exited).toBe(0);
    expect(fromPeer).toBe('hello from simopen\n');
  });

  it('exits 3 naming the attempts when no peer comes before the deadline', async () => {
    const lonely = runScript('peer', ['127.0.0.1', '20231', '--local-port', '20230', '--timeout', '300ms']);
    expect(await lonely.exited).toBe(3);
    expect(lonely.stderr()).toMatch(/no peer at 127\.0\.0\.1:20231 within 300 ms: \d+ attempts/);
  });

  it('exits 130 on Ctrl-C while dialing, with nothing left behind', async () => {
    const waiting = runScript('peer', ['127.0.0.1', '20271', '--local-port', '20270']);
    await waiting.waitFor(/start the other peer now/);
    waiting.process.kill('SIGINT');
    expect(await waiting.exited).toBe(130);
    expect(waiting.stderr()).toMatch(/dial aborted after \d+ attempts/);
  });

  it('exits 4 when the peer resets the connection', async () => {
    const peer = runScript('peer', ['127.0.0.1', '20241', '--local-port', '20240']);
    // The test process is the other peer (a different process, so the retry race is real).
    const { socket } = await dialSimultaneous({
      local: { host: '127.0.0.1', port: 20241 },
      remote: { host: '127.0.0.1', port: 20240 },
      deadlineMs: 20_000,
    });
    await peer.waitFor(/connected after/);
    socket.resetAndDestroy();
    expect(await peer.exited).toBe(4);
    expect(peer.stderr()).toContain('connection reset by peer');
  });

  it('exits 5 when a listener holds the local port', async () => {
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(20250, resolve));
    try {
      const peer = runScript('peer', ['127.0.0.1', '20251', '--local-port', '20250']);
      expect(await peer.exited).toBe(5);
      expect(peer.stderr()).toMatch(/EADDRINUSE/);
    } finally {
      server.close();
    }
  });

  it('--help prints the options and exit codes, exit 0', async () => {
    const help = runScript('peer', ['--help']);
    expect(await help.exited).toBe(0);
    expect(help.stdout()).toMatch(/^usage: peer\.ts REMOTE_HOST REMOTE_PORT/);
    expect(help.stdout()).toContain('--local-port PORT');
    expect(help.stdout()).toContain('exit codes: 0 done, 2 usage');
  });

  it.each([
    [[], /missing REMOTE_HOST and REMOTE_PORT/],
    [['127.0.0.1'], /missing REMOTE_HOST and REMOTE_PORT/],
    [['127.0.0.1', 'http'], /REMOTE_PORT: 'http' is not a port number/],
    [['127.0.0.1', '70000'], /REMOTE_PORT: port 70000 is out of range/],
    [['127.0.0.1', '8001', '--local-port', '0'], /--local-port: port 0 is out of range/],
    [['127.0.0.1', '8001', '--timeout', 'soon'], /--timeout: invalid duration 'soon'/],
    [['127.0.0.1', '8001', '--bogus'], /Unknown option '--bogus'/],
    [['not a host!', '8001'], /REMOTE_HOST: 'not a host!' is not a host name or IP address/],
    [['127.0.0.1', '8001', 'extra'], /unexpected argument 'extra'/],
    [['127.0.0.1', '20260', '--local-port', '20260'], /self-connect/],
    [['::1', '8001', '--local-host', '127.0.0.1'], /different IP families/],
  ])('usage error %j exits 2 with one line naming it', async (args, message) => {
    const run = runScript('peer', args as string[]);
    expect(await run.exited).toBe(2);
    const lines = run.stderr().trim().split('\n');
    expect(lines[0]).toMatch(/^peer: /);
    expect(lines[0]).toMatch(message);
    expect(run.stdout()).toBe('');
  });
});
