/**
 * peer.ts --max-line: a line is capped on the way in (the connection is dropped, exit 7, whatever
 * the sender does) and on the way out (a longer typed line is not sent, the chat closes, exit 7);
 * a line of exactly the cap passes whole.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startPeerWithTestSide, type TestPeer } from '../helpers/dialPeer.ts';

const peers: TestPeer[] = [];
afterEach(() => {
  for (const { peer, socket } of peers.splice(0)) {
    peer.process.kill('SIGKILL');
    socket.destroy();
  }
});

async function start(extra: string[]) {
  const made = await startPeerWithTestSide(extra);
  peers.push(made);
  return made;
}

describe('peer.ts --max-line', () => {
  it('a received line longer than the cap drops the connection with exit 7; one at the cap passes', async () => {
    const { peer, socket, closed } = await start(['--max-line', '1KiB', '--prefix', '']);
    const atCap = 'é'.repeat(512);
    socket.write(`${atCap}\n`);
    await peer.waitFor(/é\n/);
    // 64 KiB and no newline: dropped as soon as the line passes 1 KiB.
    socket.write('a'.repeat(64 * 1024));
    expect(await peer.exited).toBe(7);
    await closed;
    expect(peer.stdout()).toBe(`${atCap}\n`);
    expect(peer.stderr()).toContain(
      'the peer sent a line longer than --max-line 1024 bytes; dropping the connection',
    );
  });

  it('the default cap (4 MiB) holds against a line that never ends', async () => {
    const { peer, socket } = await start([]);
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    for (let i = 0; i < 5; i++) socket.write(chunk);
    // Without a cap the whole line would be delivered at the end of the stream.
    socket.end();
    expect(await peer.exited).toBe(7);
    expect(peer.stderr()).toContain('line longer than --max-line 4194304 bytes');
    expect(peer.stdout()).toBe('');
  });

  it('a typed line longer than the cap is not sent: the chat closes (FIN) and exits 7', async () => {
    const { peer, received, ended } = await start(['--max-line', '1KiB']);
    peer.process.stdin?.write(`short\n${'x'.repeat(2000)}\nnever sent\n`);
    await ended;
    expect(received()).toBe('short\n');
    expect(await peer.exited).toBe(7);
    expect(peer.stderr()).toMatch(/a typed line is longer than --max-line 1024 bytes: not sent; sent FIN/);
  });
});
