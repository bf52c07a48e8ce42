/**
 * rendezvous: the public server that introduces two peers so they can punch a direct TCP connection.
 * It prints one line per event and runs until a signal, or until its stdout is closed.
 */
import { parseDuration, parseFlags, parseHost, parseHostPort, parsePort, runMain } from '../lib/core/cli.ts';
import { EXIT, UsageError } from '../lib/core/errors.ts';
import type { Endpoint } from '../lib/core/types.ts';
import { MAX_LINE_BYTES, PROTOCOL_VERSION } from '../lib/rendezvous/protocol.ts';
import { startRendezvousServer } from '../lib/rendezvous/server.ts';

const USAGE =
  'rendezvous.ts [--listen HOST:PORT] [--probe-port PORT|0] [--idle-timeout 10s] [--pair-timeout 30s]';

/** --help: every option, described once (docs/lab.md quotes it). */
const HELP = `usage: ${USAGE}

The public server that introduces two peers for TCP hole punching (peer.ts --rendezvous). Each peer
registers a session name and a token derived from the secret they share (the server never sees the
secret); peers are paired on the session AND the token, so a client with another secret never joins
nor blocks a pair. Once two peers of a session and token are in, each learns the other's public
endpoint and a start time, and both dial. The first message to every client names the probe port
(or says there is none), so clients need no flag for it. One log line per event on stdout (values
that are not plain printable text are quoted and escaped); runs until a signal.
Protocol v${PROTOCOL_VERSION}: one JSON object per line, at most ${MAX_LINE_BYTES} bytes.

  --listen HOST:PORT   where to listen (default 127.0.0.1:33478; port 0: any free port, logged)
  --probe-port PORT|0  a second port that answers each connection with the endpoint it came from, so
                       a client learns whether its NAT maps each destination to a new port
                       (default: the listen port + 1, or any free port with --listen HOST:0; 0: none)
  --idle-timeout D     a client must register within D, and report its result within D plus the
                       pair timeout (default 10s)
  --pair-timeout D     a registered client that no second peer with the same session and secret
                       joins within D is dropped (default 30s; announced to clients)
  -h, --help           this text

exit codes: 0 stopped because stdout was closed (the log's reader went away), 1 cannot listen,
            2 bad usage, 130 stopped by a signal (SIGINT, SIGTERM, SIGHUP)`;

/** --listen HOST:PORT, where port 0 (any free port) is allowed: the log names the port. */
function parseListen(text: string): Endpoint {
  const any = /^(.*):0$/.exec(text);
  return any?.[1] ? { host: parseHost(any[1], '--listen'), port: 0 } : parseHostPort(text, '--listen');
}

runMain('rendezvous', USAGE, async () => {
  const { values, positionals } = parseFlags(process.argv.slice(2), {
    listen: { type: 'string', default: '127.0.0.1:33478' },
    'probe-port': { type: 'string' },
    'idle-timeout': { type: 'string', default: '10s' },
    'pair-timeout': { type: 'string', default: '30s' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return EXIT.ok;
  }
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const listen = parseListen(values.listen);
  // null: no probe port; 0: any free port.
  const probePort =
    values['probe-port'] === undefined
      ? listen.port === 0
        ? 0
        : listen.port + 1
      : values['probe-port'] === '0'
        ? null
        : parsePort(values['probe-port'], '--probe-port');
  if (probePort !== null && probePort > 65535)
    throw new UsageError('--probe-port: default (listen port + 1) is out of range; give one');
  if (probePort !== null && probePort !== 0 && probePort === listen.port)
    throw new UsageError('--probe-port must differ from the listen port');
  const idleTimeoutMs = parseDuration(values['idle-timeout'], '--idle-timeout');
  const pairTimeoutMs = parseDuration(values['pair-timeout'], '--pair-timeout');
  if (idleTimeoutMs <= 0 || pairTimeoutMs <= 0) throw new UsageError('timeouts must be above zero');

  // The log is the server's output: once nobody reads it (`| head`, a closed pipe), stop cleanly.
  let stdoutClosed: ((reason: string) => void) | undefined;
  let stdoutOpen = true;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    stdoutOpen = false;
    stdoutClosed?.(error.code ?? error.message);
  });
  process.stderr.on('error', () => {});
  const log = (line: string) => {
    if (stdoutOpen) process.stdout.write(`${line}\n`);
  };

  // Listening first, then the handlers, would let a signal sent right after the 'listening' line
  // kill the process before they exist.
  const stopped = new Promise<{ signal: NodeJS.Signals } | { stdout: string }>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
      process.once(signal, () => resolve({ signal }));
    stdoutClosed = (reason) => resolve({ stdout: reason });
    if (!stdoutOpen) resolve({ stdout: 'closed' });
  });
  const server = await startRendezvousServer({
    ...listen,
    probePort,
    idleTimeoutMs,
    pairTimeoutMs,
    log,
  }).catch((error: NodeJS.ErrnoException) => {
    throw new Error(`cannot listen on ${values.listen}: ${error.code ?? error.message}`);
  });
  const stop = await stopped;
  await server.close();
  if ('signal' in stop) {
    log(`${new Date().toISOString()} stopped signal=${stop.signal}`);
    return EXIT.interrupted;
  }
  process.stderr.write(`rendezvous: stdout closed (${stop.stdout}): stopped\n`);
  return EXIT.ok;
});
