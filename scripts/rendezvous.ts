/**
 * rendezvous: the public server that introduces two peers so they can punch a direct TCP connection.
 * It prints one line per event and runs until Ctrl-C / SIGTERM.
 */
import { parseDuration, parseFlags, parseHostPort, parsePort, runMain } from '../lib/core/cli.ts';
import { EXIT, UsageError } from '../lib/core/errors.ts';
import { startRendezvousServer } from '../lib/rendezvous/server.ts';

const USAGE =
  'rendezvous.ts [--listen HOST:PORT] [--probe-port PORT|0] [--idle-timeout 10s] [--pair-timeout 30s]';

/** --help: every option, described once (docs/lab.md quotes it). */
const HELP = `usage: ${USAGE}

The public server that introduces two peers for TCP hole punching (peer.ts --rendezvous). Each peer
registers a session name and a token derived from the secret they share (the server never sees the
secret); once two peers with the same session and token are in, each learns the other's public
endpoint and a start time, and both dial. One log line per event on stdout; runs until Ctrl-C or
SIGTERM. Protocol: one JSON object per line (docs/lab.md).

  --listen HOST:PORT   where to listen (default 127.0.0.1:33478)
  --probe-port PORT|0  a second port that answers each connection with the endpoint it came from, so
                       a client learns whether its NAT maps each destination to a new port
                       (default: the listen port + 1; 0: none)
  --idle-timeout D     a client must register within D, and report its result within D plus the
                       pair timeout (default 10s)
  --pair-timeout D     a registered client whose session gets no second peer within D is dropped
                       (default 30s)
  -h, --help           this text

exit codes: 0 stopped by SIGTERM, 1 cannot listen, 2 bad usage, 130 stopped by Ctrl-C (SIGINT)`;

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
  const listen = parseHostPort(values.listen, '--listen');
  const probePort =
    values['probe-port'] === undefined
      ? listen.port + 1
      : values['probe-port'] === '0'
        ? 0
        : parsePort(values['probe-port'], '--probe-port');
  if (probePort > 65535)
    throw new UsageError('--probe-port: default (listen port + 1) is out of range; give one');
  if (probePort === listen.port) throw new UsageError('--probe-port must differ from the listen port');
  const idleTimeoutMs = parseDuration(values['idle-timeout'], '--idle-timeout');
  const pairTimeoutMs = parseDuration(values['pair-timeout'], '--pair-timeout');
  if (idleTimeoutMs <= 0 || pairTimeoutMs <= 0) throw new UsageError('timeouts must be above zero');

  const server = await startRendezvousServer({ ...listen, probePort, idleTimeoutMs, pairTimeoutMs }).catch(
    (error: NodeJS.ErrnoException) => {
      throw new Error(`cannot listen on ${values.listen}: ${error.code ?? error.message}`);
    },
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  await server.close();
  process.stdout.write(`${new Date().toISOString()} stopped signal=${signal}\n`);
  return signal === 'SIGINT' ? EXIT.interrupted : EXIT.ok;
});
