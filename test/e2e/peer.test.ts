import { describe, expect, it } from 'vitest';
import { startChild } from '../../lib/core/childProcess.ts';
import { dialSimultaneous } from '../../lib/peer/dialSimultaneous.ts';
import { freePorts } from '../helpers/freePorts.ts';
import { runScript } from '../helpers/runScript.ts';

// Ports come from freePorts (this run's own); the fixed ones in the usage errors never reach a socket.

/** Two free ports as strings, for command lines. */
async function portPair(): Promise<[string, string]> {
  const [a, b] = await freePorts(2);
  return [String(a), String(b)];
}

describe('peer.ts', () => {
  it('two peers find each other by retrying, chat both ways, and both exit 0 when one quits', async () => {
    const [p00, p01] = await portPair();
    const alice = runScript('peer', ['127.0.0.1', p01, '--local-port', p00, '--prefix', 'bob> ']);
    const bob = runScript('peer', ['127.0.0.1', p00, '--local-port', p01, '--prefix', 'alice> ']);
    await Promise.all([
      alice.waitFor(/connected after \d+ attempts/),
      bob.waitFor(/connected after \d+ attempts/),
    ]);
    expect(alice.stderr()).toContain(`dialing 127.0.0.1:${p01} from 0.0.0.0:${p00} by simultaneous open`);

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
    const [p10, p11] = await portPair();
    const alice = runScript('peer', ['127.0.0.1', p11, '--local-port', p10]);
    const bob = runScript('peer', ['127.0.0.1', p10, '--local-port', p11]);
    await Promise.all([alice.waitFor(/connected after/), bob.waitFor(/connected after/)]);
    alice.process.stdin?.end('last words\n');
    await alice.waitFor(/sent FIN/);
    await bob.waitFor(/peer> last words\n/);
    expect(await bob.exited).toBe(0);
    expect(await alice.exited).toBe(0);
    expect(alice.stderr()).toContain('peer closed the connection');
  });

  it('interoperates with socat as the other peer, lines both ways', async () => {
    const [p20, p21] = await portPair();
    const peer = runScript('peer', ['127.0.0.1', p21, '--local-port', p20, '--local-host', '127.0.0.1']);
    const socat = startChild('socat', [
      '-',
      `TCP:127.0.0.1:${p20},bind=127.0.0.1:${p21},reuseaddr,retry=200000,interval=0.0001`,
    ]);
    await peer.waitFor(/connected after/);
    socat.process.stdin?.write('hello from socat ✓\n');
    peer.process.stdin?.write('hello from simopen\n');
    await peer.waitFor(/peer> hello from socat ✓\n/);
    peer.process.stdin?.write('/quit\n');
    // socat sees our FIN, closes its side and exits; peer.ts then sees socat's FIN.
    expect(await socat.exited).toBe(0);
    expect(await peer.exited).toBe(0);
    expect(socat.stdout()).toBe('hello from simopen\n');
  });

  it('exits 3 naming the attempts when no peer comes before the deadline', async () => {
    const [p30, p31] = await portPair();
    const lonely = runScript('peer', ['127.0.0.1', p31, '--local-port', p30, '--timeout', '300ms']);
    expect(await lonely.exited).toBe(3);
    expect(lonely.stderr()).toMatch(
      new RegExp(`no peer at 127\\.0\\.0\\.1:${p31} within 300 ms: \\d+ attempts`),
    );
  });

  it('exits 130 on Ctrl-C while dialing, with nothing left behind', async () => {
    const [p70, p71] = await portPair();
    const waiting = runScript('peer', ['127.0.0.1', p71, '--local-port', p70]);
    await waiting.waitFor(/start the other peer now/);
    waiting.process.kill('SIGINT');
    expect(await waiting.exited).toBe(130);
    expect(waiting.stderr()).toMatch(/dial aborted after \d+ attempts/);
  });

  it('exits 4 when the peer resets the connection', async () => {
    const [p40, p41] = await portPair();
    const peer = runScript('peer', ['127.0.0.1', p41, '--local-port', p40]);
    // The test process is the other peer (a different process, so the retry race is real).
    const { socket } = await dialSimultaneous({
      local: { host: '127.0.0.1', port: Number(p41) },
      remote: { host: '127.0.0.1', port: Number(p40) },
      deadlineMs: 20_000,
    });
    await peer.waitFor(/connected after/);
    socket.resetAndDestroy();
    expect(await peer.exited).toBe(4);
    expect(peer.stderr()).toContain('connection reset by peer');
  });

  it('exits 5 when a listener holds the local port', async () => {
    const [p50, p51] = await portPair();
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(Number(p50), resolve));
    try {
      const peer = runScript('peer', ['127.0.0.1', p51, '--local-port', p50]);
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
