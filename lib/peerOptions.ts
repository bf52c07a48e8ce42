/** peer.ts flags: the classic program's argument shape (REMOTE_HOST REMOTE_PORT) plus named options. */
import { EXIT, parseDuration, parseFlags, parseHost, parsePort, UsageError } from './cli.ts';

export const PEER_USAGE =
  'peer.ts REMOTE_HOST REMOTE_PORT [--local-port 8000] [--local-host ADDR] [--timeout 30s] [--retry-interval 0ms] [--linger 5s] [--prefix "peer> "]';

/** peer.ts exit codes (documented in the README). */
export const PEER_EXIT = {
  ...EXIT,
  /** The deadline passed and no peer answered. */
  noPeer: 3,
  /** The connection was reset or lost after it opened. */
  connectionLost: 4,
  /** The local endpoint cannot be used (port held by a listener, and the like). */
  localUnavailable: 5,
} as const;

export interface PeerOptions {
  remote: { host: string; port: number };
  local: { host?: string; port: number };
  timeoutMs: number;
  retryIntervalMs: number;
  /** After our FIN, how long to wait for the peer's before closing anyway. */
  lingerMs: number;
  prefix: string;
}

export function parsePeerArgs(argv: string[]): PeerOptions {
  const { values, positionals } = parseFlags(argv, {
    'local-port': { type: 'string', default: '8000' },
    'local-host': { type: 'string' },
    timeout: { type: 'string', default: '30s' },
    'retry-interval': { type: 'string', default: '0ms' },
    linger: { type: 'string', default: '5s' },
    prefix: { type: 'string', default: 'peer> ' },
  });
  if (positionals.length < 2) throw new UsageError('missing REMOTE_HOST and REMOTE_PORT');
  if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
  const [remoteHost = '', remotePort = ''] = positionals;
  const timeoutMs = parseDuration(values.timeout, '--timeout');
  if (timeoutMs <= 0) throw new UsageError('--timeout must be greater than 0');
  return {
    remote: { host: parseHost(remoteHost, 'REMOTE_HOST'), port: parsePort(remotePort, 'REMOTE_PORT') },
    local: {
      host: values['local-host'] === undefined ? undefined : parseHost(values['local-host'], '--local-host'),
      port: parsePort(values['local-port'], '--local-port'),
    },
    timeoutMs,
    retryIntervalMs: parseDuration(values['retry-interval'], '--retry-interval'),
    lingerMs: parseDuration(values.linger, '--linger'),
    prefix: values.prefix,
  };
}
