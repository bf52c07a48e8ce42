/**
 * Ports this test run owns: free ones the kernel hands out (listen on port 0), never fixed numbers,
 * so two runs on one machine never meet on a port. Checked against the socket table too, in every
 * state (TIME_WAIT included), so a port is not one another run's socket is using right now.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';

function portsInSocketTable(): Set<number> {
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      const port = local?.split(':')[1];
      if (port) ports.add(Number.parseInt(port, 16));
    }
  }
  return ports;
}

function listen(port: number, host: string): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host, exclusive: true }, () => resolve(server));
  });
}

function close(servers: net.Server[]): Promise<unknown> {
  return Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
}

/**
 * `count` consecutive free ports (first, first+1, ...), free on `host` (0.0.0.0 covers every IPv4
 * address). They stay free only by chance: ask for them right before use.
 */
export async function freePorts(count = 1, host = '0.0.0.0'): Promise<number[]> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const first = await listen(0, host);
    if (!first) throw new Error(`cannot listen on ${host}`);
    const base = (first.address() as net.AddressInfo).port;
    const held = [first];
    let ok = base + count - 1 <= 65_535;
    for (let port = base + 1; ok && port < base + count; port += 1) {
      const server = await listen(port, host);
      if (server) held.push(server);
      else ok = false;
    }
    await close(held);
    const ports = Array.from({ length: count }, (_, index) => base + index);
    const used = portsInSocketTable();
    if (ok && ports.every((port) => !used.has(port))) return ports;
  }
  throw new Error(`no ${count} consecutive free ports on ${host}`);
}

/** One free port. */
export async function freePort(host = '0.0.0.0'): Promise<number> {
  const [port] = await freePorts(1, host);
  return port as number;
}
