/**
 * A signal mid-chat ends peer.ts with 130 and says what happened (interrupted, and by which
 * signal), never "peer closed the connection"; SIGHUP is handled like SIGINT and SIGTERM.
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

describe('peer.ts signals mid-chat', () => {
  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)(
    '%s: exit 130, says interrupted, sends FIN',
    async (signal) => {
      const made = await startPeerWithTestSide();
      peers.push(made);
      const { peer, socket, ended } = made;
      socket.write('before the signal\n');
      await peer.waitFor(/peer> before the signal\n/);
      peer.process.kill(signal);
      // Our FIN reaches the other side, which answers with its own (the socket ends itself).
      await ended;
      expect(await peer.exited).toBe(130);
      expect(peer.stderr()).toContain(`interrupted (${signal}): closing the connection`);
      expect(peer.stderr()).not.toContain('peer closed the connection');
    },
  );
});
