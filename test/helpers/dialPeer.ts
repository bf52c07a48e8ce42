/** The test process as the other peer of a peer.ts run: a real simultaneous open on loopback. */
import type net from 'node:net';
import type { Child } from '../../lib/core/childProcess.ts';
import { dialSimultaneous } from '../../lib/peer/dialSimultaneous.ts';
import { freePorts } from './freePorts.ts';
import { runScript } from './runScript.ts';

export interface TestPeer {
  peer: Child;
  socket: net.Socket;
  /** Everything peer.ts sent us so far. */
  received: () => string;
  /** Resolves when peer.ts closed its side (FIN). */
  ended: Promise<void>;
  /** Resolves when the socket is gone (closed or reset). */
  closed: Promise<void>;
}

/** Starts peer.ts with extra arguments and connects to it from the test process. */
export async function startPeerWithTestSide(extra: string[] = []): Promise<TestPeer> {
  const [peerPort, ourPort] = (await freePorts(2)) as [number, number];
  const peer = runScript('peer', ['127.0.0.1', String(ourPort), '--local-port', String(peerPort), ...extra]);
  const { socket } = await dialSimultaneous({
    local: { host: '127.0.0.1', port: ourPort },
    remote: { host: '127.0.0.1', port: peerPort },
    deadlineMs: 30_000,
  });
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    text += chunk;
  });
  socket.on('error', () => {});
  const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await peer.waitFor(/connected after/);
  return { peer, socket, received: () => text, ended, closed };
}
