/**
 * TCP hole punching through two NATs, and the kernel's own record of it. Builds a lab (alice and bob
 * each behind a NAT router with endpoint-independent mapping, a rendezvous server on the "internet"),
 * runs this file again in three of its hosts (the server, and the two peers that punch through it),
 * traces the TCP states with the kernel tracepoint, and prints the path of the punched connection on
 * each side. Needs root (network namespaces, tracefs).
 *
 *   sudo npx tsx examples/punch-through-nat.ts
 */
import { fileURLToPath } from 'node:url';
import { createLab } from 'simopen/lab';
import { punchThroughRendezvous, startRendezvousServer } from 'simopen/rendezvous';
import { classifyClose, classifyOpen, formatPath, formatSourceLabel, startStateTrace } from 'simopen/trace';

const SELF = fileURLToPath(import.meta.url);
const RENDEZVOUS_PORT = 3478;
const [role, ...args] = process.argv.slice(2);

if (role === 'server') {
  // In rv: pair the two peers of the session. The lab stops it when it closes.
  const [host = ''] = args;
  await startRendezvousServer({ host, port: RENDEZVOUS_PORT, probePort: 0, log: () => {} });
  console.log('listening');
} else if (role === 'peer') {
  // In alice or bob: punch from `port`, say hello over the direct connection, close it.
  const [name = '', server = '', port = ''] = args;
  const { socket, peer } = await punchThroughRendezvous({
    server: { host: server, port: RENDEZVOUS_PORT },
    local: { port: Number(port) },
    session: 'example',
    secret: 'not-a-secret',
    name,
  });
  socket.setEncoding('utf8');
  socket.end(`hello from ${name}\n`);
  let received = '';
  for await (const chunk of socket) received += chunk;
  console.log(
    `${name}: direct to ${peer.name} at ${peer.endpoint.host}:${peer.endpoint.port}, received: ${received.trim()}`,
  );
} else {
  if (process.getuid?.() !== 0) {
    console.error('punch-through-nat: needs root (network namespaces and the kernel tracepoint)');
    process.exit(1);
  }
  // The tracepoint sees every namespace on the machine: a port of this run's own keeps others out.
  const port = 20_000 + (process.pid % 40_000);
  const lab = await createLab({ topology: 'eim:apdf:drop,eim:apdf:drop' });
  try {
    const address = (host: string) => lab.host(host).addresses[0] ?? '';
    const [rv, alice, bob] = [address('rv'), address('alice'), address('bob')];
    const trace = startStateTrace({
      source: 'kernel',
      portRange: { first: port, last: port },
      hosts: [alice, bob],
    });
    const server = lab.spawnScript('rv', SELF, ['server', rv]);
    await server.waitForLine(/^listening$/);
    const peers = ['alice', 'bob'].map((name) =>
      lab.spawnScript(name, SELF, ['peer', name, rv, String(port)]),
    );
    const codes = await Promise.all(peers.map((peer) => peer.exited));
    for (const peer of peers) console.log(peer.output.join('\n'));
    if (codes.some((code) => code !== 0)) throw new Error(`a peer failed (exit codes ${codes.join(', ')})`);
    // The last ACK of the close can follow the peers' exit by a moment.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const paths = await trace.stop();
    // Each side's punched connection: the path from its port that reached ESTABLISHED, not to rv.
    const punched = (host: string) =>
      paths.find(
        (path) => path.local.host === host && path.remote.host !== rv && path.states.includes('ESTABLISHED'),
      );
    const [a, b] = [punched(alice), punched(bob)];
    if (!a || !b) throw new Error('the trace holds no punched connection');
    console.log(formatSourceLabel(trace.label));
    console.log(`alice  ${formatPath(a)}`);
    console.log(`bob    ${formatPath(b)}`);
    console.log(`open: ${classifyOpen(a, b)}; close: alice ${classifyClose(a)}, bob ${classifyClose(b)}`);
  } finally {
    await lab.close();
  }
}
