/**
 * rendezvous: the public server that introduces two peers so they can punch a direct TCP connection.
 * It prints one line per event and runs until Ctrl-C / SIGTERM.
 */
import { parseDuration, parseFlags, parseHostPort, parsePort, runMain } from '../lib/core/cli.ts';
import { EXIT, UsageError } from '../lib/core/errors.ts';
import { startRendezvousServer } from '../lib/rendezvous/server.ts';

const USAGE =
  'rendezvous.ts [--listen HOST:PORT] [--probe-port PORT|0] [--idle-timeout 10s] [--pair-timeout 30s]';

runMain('rendezvous', USAGE, async () => {
  const { values, positionals } = parseFlags(process.argv.slice(2), {
    listen: { type: 'string', default: '127.0.0.1:33478' },
    'probe-port': { type: 'string' },
    'idle-timeout': { type: 'string', default: '10s' },
    'pair-timeout': { type: 'string', default: '30s' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(`usage: ${USAGE}\n`);
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
