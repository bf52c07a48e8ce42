/** peer.ts flags: the classic program's argument shape (REMOTE_HOST REMOTE_PORT) plus named options. */
import { parseBytes, parseDuration, parseFlags, parseHost, parseHostPort, parsePort } from '../core/cli.ts';
import { EXIT, UsageError } from '../core/errors.ts';
import { isValidSession } from '../rendezvous/protocol.ts';
import type { PeerOptions, RendezvousChoice } from './types.ts';

export const PEER_USAGE =
  'peer.ts REMOTE_HOST REMOTE_PORT [--local-port 8000] [--local-host ADDR] [--timeout 30s] [--retry-interval 0ms] [--linger 5s] [--prefix "peer> "] [--max-line 4MiB] [--trace] | peer.ts --rendezvous HOST:PORT --session ID --secret S [--local-port 8000] ...';

export const PEER_HELP = `usage: ${PEER_USAGE}

  REMOTE_HOST REMOTE_PORT  the other peer (IPv4, IPv6 or a name) and its local port
  --local-port PORT        our fixed local port, the other peer's REMOTE_PORT (default 8000)
  --local-host ADDR        our local address (default: the wildcard of the remote's family)
  --timeout D              give up when no peer answered within D (default 30s)
  --retry-interval D       pause between connect attempts (default 0ms: at once, best on loopback)
  --linger D               after our FIN, how long to wait for the peer's (default 5s)
  --prefix TEXT            printed before each received line (default "peer> ")
  --max-line BYTES         the longest line, received or typed, without its newline (default 4MiB;
                           512, 64KiB, 1MiB; at most 256MiB): a longer received line drops the
                           connection, a longer typed line is not sent and closes the chat (exit 7)
  --trace                  print the connection's TCP state changes as they happen (root: tracefs)
  --rendezvous HOST:PORT   learn the peer from a rendezvous server (with --session ID --secret S), then punch
  -h, --help               this text

Type lines to send them; /quit or end of input closes (FIN). A terminal is read in raw mode, so a
typed line has no length limit but --max-line. With --rendezvous, --timeout bounds everything from
the first connect to the direct connection, and the server's first message names its probe port.

exit codes: 0 done, 2 usage, 3 no peer before --timeout, 4 connection reset or lost, 5 local endpoint unusable,
            6 rendezvous failed, 7 a line longer than --max-line, 130 interrupted (SIGINT, SIGTERM, SIGHUP);
            done: we quit, input ended, the peer closed, or our stdout was closed`;

/** peer.ts exit codes (PEER_HELP lists them; docs/peer.md explains them). */
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
  /** A line longer than --max-line: received (the connection was dropped) or typed (not sent). */
  lineTooLong: 7,
} as const;

export function parsePeerArgs(argv: string[]): PeerOptions {
  const { values, positionals } = parseFlags(argv, {
    'local-port': { type: 'string', default: '8000' },
    'local-host': { type: 'string' },
    timeout: { type: 'string', default: '30s' },
    'retry-interval': { type: 'string', default: '0ms' },
    linger: { type: 'string', default: '5s' },
    prefix: { type: 'string', default: 'peer> ' },
    'max-line': { type: 'string', default: '4MiB' },
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
    maxLineBytes: parseLineCap(values['max-line']),
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

/** The cap stays well below what V8 holds in one string (~512 MiB), where readline used to fail. */
export const MAX_LINE_CAP = 256 * 1024 * 1024;

/** --max-line: at least one byte, at most MAX_LINE_CAP. */
function parseLineCap(text: string): number {
  const bytes = parseBytes(text, '--max-line', MAX_LINE_CAP);
  if (bytes < 1) throw new UsageError('--max-line must be at least 1 byte');
  return bytes;
}
