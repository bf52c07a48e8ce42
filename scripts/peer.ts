/**
 * Two-party chat over one TCP simultaneous open: both peers connect() to each other from a fixed
 * local port; nobody listens. Run it on both ends, each naming the other.
 */
import { runChat } from '../lib/chatSession.ts';
import { formatEndpoint, runMain, UsageError } from '../lib/cli.ts';
import { DialError, dialSimultaneous, prepareDial } from '../lib/dialSimultaneous.ts';
import { PEER_EXIT, PEER_USAGE, parsePeerArgs } from '../lib/peerOptions.ts';

const status = (line: string) => process.stderr.write(`${line}\n`);

function exitCodeForDialError(error: DialError): number {
  switch (error.code) {
    case 'EDEADLINE':
      return PEER_EXIT.noPeer;
    case 'ABORT_ERR':
      return PEER_EXIT.interrupted;
    case 'EINVAL':
    case 'ESELFCONNECT':
    case 'EADDRNOTAVAIL':
      return PEER_EXIT.usage;
    default:
      return PEER_EXIT.localUnavailable;
  }
}

async function main(): Promise<number> {
  const options = parsePeerArgs(process.argv.slice(2));
  // Endpoint mistakes (self-connect, mixed families, an address we do not have) are usage errors:
  // caught here, before any socket is opened.
  const prepared = await prepareDial(options).catch((error: unknown) => {
    throw error instanceof DialError ? new UsageError(error.message) : error;
  });
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  status(
    `dialing ${formatEndpoint(prepared.target)} from ${formatEndpoint(prepared.local)} by simultaneous open; start the other peer now`,
  );
  let dialed: Awaited<ReturnType<typeof dialSimultaneous>>;
  try {
    dialed = await dialSimultaneous({
      local: prepared.local,
      remote: prepared.target,
      deadlineMs: options.timeoutMs,
      retryIntervalMs: options.retryIntervalMs,
      signal: interrupt.signal,
    });
  } catch (error) {
    if (!(error instanceof DialError)) throw error;
    status(`peer: ${error.message}`);
    return exitCodeForDialError(error);
  }
  const { socket } = dialed;
  status(
    `connected after ${dialed.attempts} attempts in ${dialed.elapsedMs.toFixed(1)} ms (${formatEndpoint({ host: socket.localAddress ?? '?', port: socket.localPort ?? 0 })} <-> ${formatEndpoint({ host: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 })}); type lines, /quit to leave`,
  );

  const end = await runChat({
    socket,
    input: process.stdin,
    output: process.stdout,
    status,
    prefix: options.prefix,
    lingerMs: options.lingerMs,
    signal: interrupt.signal,
  });
  // stdin may still hold the event loop open (a terminal); we are done with it.
  process.stdin.destroy();
  switch (end.kind) {
    case 'quit':
    case 'peer-closed':
      return PEER_EXIT.ok;
    case 'interrupted':
      return PEER_EXIT.interrupted;
    case 'lost':
      return PEER_EXIT.connectionLost;
  }
}

runMain('peer', PEER_USAGE, main);
