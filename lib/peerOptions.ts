/** peer.ts flags: the classic program's argument shape (REMOTE_HOST REMOTE_PORT) plus named options. */
import { EXIT, parseDuration, parseFlags, parseHost, parseHostPort, parsePort, UsageError } from './cli.ts';
import { isValidSession } from './rendezvousProtocol.ts';

export const PEER_USAGE =
  'peer.ts REMOTE_HOST REMOTE_PORT [--local-port 8000] [--local-host ADDR] [--timeout 30s] [--retry-interval 0ms] [--linger 5s] [--prefix "peer> "] [--trace] | peer.ts --rendezvous HOST:PORT --session ID --secret S [--local-port 8000] ...';

/** peer.ts exit codes (documented in the README). */
export const PEER_EXIT = {
  ...EXIT,
  /** The deadline passed and no peer answered. */
  noPeer: 3,
  /** The connection was reset or lost after it opened. */
  connectionLost: 4,
  /** The local endpoint cannot be used (port held by a listener, and the like). */
  localUnavailable: 5,
  /** --rendezvous: the server could not be reached, refused us, or no peer joined the session. */
  rendezvousFailed: 6,
} as const;

/** --rendezvous: learn the peer's public endpoint from a rendezvous server, then punch (rendezvousClient.ts). */
export interface RendezvousChoice {
  server: { host: string; port: number };
  session: string;
  secret: string;
}

export interface PeerOptions {
  /** Absent with --rendezvous, which learns it from the server. */
  remote?: { host: string; port: number };
  rendezvous?: RendezvousChoice;
  local: { host?: string; port: number };
  timeoutMs: number;
  retryIntervalMs: number;
  /** After our FIN, how long to wait for the peer's before closing anyway. */
  lingerMs: number;
  prefix: string;
  /** Print the connection's TCP state changes as they happen (lib/liveTrace.ts). */
  trace: boolean;
}

export function parsePeerArgs(argv: string[]): PeerOptions {
  const { values, positionals } = parseFlags(argv, {
    'local-port': { type: 'string', default: '8000' },
    'local-host': { type: 'string' },
    timeout: { type: 'string', default: '30s' },
    'retry-interval': { type: 'string', default: '0ms' },
    linger: { type: 'string', default: '5s' },
    prefix: { type: 'string', default: 'peer> ' },
    rendezvous: { type: 'string' },
    session: { type: 'string' },
    secret: { type: 'string' },
    trace: { type: 'boolean' },
  });
  const rendezvous = parseRendezvousChoice(values, positionals);
  if (!rendezvous && positionals.length < 2) throw new UsageError('missing REMOTE_HOST and REMOTE_PORT');
  if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
  const [remoteHost = '', remotePort = ''] = positionals;
  const timeoutMs = parseDuration(values.timeout, '--timeout');
  if (timeoutMs <= 0) throw new UsageError('--timeout must be greater than 0');
  return {
    ...(rendezvous
      ? { rendezvous }
      : {
          remote: { host: parseHost(remoteHost, 'REMOTE_HOST'), port: parsePort(remotePort, 'REMOTE_PORT') },
        }),
    local: {
      host: values['local-host'] === undefined ? undefined : parseHost(values['local-host'], '--local-host'),
      port: parsePort(values['local-port'], '--local-port'),
    },
    timeoutMs,
    retryIntervalMs: parseDuration(values['retry-interval'], '--retry-interval'),
    lingerMs: parseDuration(values.linger, '--linger'),
    prefix: values.prefix,
    trace: values.trace ?? false,
  };
}

function parseRendezvousChoice(
  values: { rendezvous?: string; session?: string; secret?: string },
  positionals: string[],
): RendezvousChoice | undefined {
  if (values.rendezvous === undefined) {
    if (values.session !== undefined || values.secret !== undefined)
      throw new UsageError('--session and --secret need --rendezvous HOST:PORT');
    return undefined;
  }
  if (positionals.length)
    throw new UsageError('--rendezvous replaces REMOTE_HOST REMOTE_PORT: give one or the other');
  const server = parseHostPort(values.rendezvous, '--rendezvous');
  if (values.session === undefined || !isValidSession(values.session))
    throw new UsageError('--rendezvous needs --session ID (1..64 of A-Z a-z 0-9 . _ -)');
  if (!values.secret) throw new UsageError('--rendezvous needs --secret S (shared with the other peer)');
  return { server, session: values.session, secret: values.secret };
}
