/**
 * Ports for tests that need fixed ones (peer.ts binds a known local port): the kernel picks free
 * ephemeral ports, held all at once so they differ, then released for the test to use. Two runs at
 * once get different ports.
 */
import net from 'node:net';

export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen({ host, port: 0 }, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
