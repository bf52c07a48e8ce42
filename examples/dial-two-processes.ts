/**
 * Two local processes open one TCP connection by simultaneous open: each connect()s from its own port
 * to the other's, and nobody listens. This process forks the second one; each sends a line over the
 * connection, closes its side, and prints what it received.
 *
 *   npx tsx examples/dial-two-processes.ts
 */
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { dialSimultaneous, formatEndpoint } from 'simopen/peer';

const HOST = '127.0.0.1';

/** Two ports nobody uses now: the kernel's pick for two listeners, closed again. */
async function freePorts(): Promise<[number, number]> {
  const servers = [net.createServer(), net.createServer()];
  await Promise.all(
    servers.map((server) => new Promise((resolve) => server.listen(0, HOST, () => resolve(0)))),
  );
  const [a, b] = servers.map((server) => (server.address() as net.AddressInfo).port) as [number, number];
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return [a, b];
}

async function talk(name: string, localPort: number, remotePort: number): Promise<string> {
  const local = { host: HOST, port: localPort };
  const remote = { host: HOST, port: remotePort };
  const { socket, attempts, elapsedMs } = await dialSimultaneous({ local, remote, deadlineMs: 10_000 });
  socket.setEncoding('utf8');
  socket.end(`hello from the ${name} process\n`);
  let received = '';
  for await (const chunk of socket) received += chunk;
  return `${name}: ${formatEndpoint(local)} <-> ${formatEndpoint(remote)} after ${attempts} connect attempts (${elapsedMs.toFixed(1)} ms), received: ${received.trim()}`;
}

const [role, ownPort, peerPort] = process.argv.slice(2);
if (role === 'second') {
  console.log(await talk('second', Number(ownPort), Number(peerPort)));
} else {
  const [first, second] = await freePorts();
  // fork() passes on this process's node flags: the tsx loader comes along.
  const child = fork(fileURLToPath(import.meta.url), ['second', String(second), String(first)]);
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  console.log(await talk('first', first, second));
  const code = await exited;
  if (code !== 0) {
    console.error(`the second process exited ${code}`);
    process.exitCode = 1;
  }
}
