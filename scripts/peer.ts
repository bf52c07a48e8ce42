/**
 * Two-party chat over one TCP simultaneous open: both peers connect() to each other from a fixed
 * local port; nobody listens. Run it on both ends, each naming the other.
 */
import type { Socket } from 'node:net';
import { runMain } from '../lib/core/cli.ts';
import { formatEndpoint } from '../lib/core/endpoint.ts';
import { UsageError } from '../lib/core/errors.ts';
import { runChat } from '../lib/peer/chatSession.ts';
import { DialError, dialSimultaneous, prepareDial } from '../lib/peer/dialSimultaneous.ts';
import { PEER_EXIT, PEER_HELP, PEER_USAGE, parsePeerArgs } from '../lib/peer/options.ts';
import type { PeerOptions, RendezvousChoice } from '../lib/peer/types.ts';
import { PunchError, punchThroughRendezvous } from '../lib/rendezvous/client.ts';
import { type LiveTrace, startLiveTrace } from '../lib/trace/connectionLiveTrace.ts';

const status = (line: string) => process.stderr.write(`${line}\n`);

// A closed stdout or stderr (`| head -1`) must not crash us with an unhandled EPIPE: the chat notices
// a closed stdout on its next line and ends (runChat); status lines to a closed stderr are dropped.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

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

/** --rendezvous: learn the peer's public endpoint from the server, then punch from our local port. */
async function punch(
  options: PeerOptions,
  rendezvous: RendezvousChoice,
  signal: AbortSignal,
  trace: LiveTrace | undefined,
): Promise<Socket | number> {
  status(
    `registering with ${formatEndpoint(rendezvous.server)} for session '${rendezvous.session}' from port ${options.local.port}`,
  );
  try {
    const punched = await punchThroughRendezvous({
      server: rendezvous.server,
      local: options.local,
      session: rendezvous.session,
      secret: rendezvous.secret,
      // --timeout bounds it all: the wait for the server and the peer, and the punch.
      timeoutMs: options.timeoutMs,
      retryIntervalMs: options.retryIntervalMs,
      signal,
      onProgress: status,
      // The probe port comes from the server's hello; its connection is not ours to trace.
      onProbe: (probe) => trace?.ignoreRemote(probe),
    });
    const { socket } = punched;
    status(
      `connected directly after ${punched.attempts} attempts in ${punched.elapsedMs.toFixed(1)} ms (${formatEndpoint({ host: socket.localAddress ?? '?', port: socket.localPort ?? 0 })} <-> ${formatEndpoint({ host: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 })}); type lines, /quit to leave`,
    );
    return socket;
  } catch (error) {
    if (!(error instanceof PunchError)) throw error;
    status(`peer: ${error.message}`);
    if (error.code === 'ABORT_ERR') return PEER_EXIT.interrupted;
    return error.code === 'ERENDEZVOUS' ? PEER_EXIT.rendezvousFailed : PEER_EXIT.noPeer;
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${PEER_HELP}\n`);
    return PEER_EXIT.ok;
  }
  const options = parsePeerArgs(argv);
  const { remote } = options;
  // Endpoint mistakes (self-connect, mixed families, an address we do not have) are usage errors:
  // caught here, before any socket is opened.
  const prepared =
    remote &&
    (await prepareDial({ ...options, remote }).catch((error: unknown) => {
      throw error instanceof DialError ? new UsageError(error.message) : error;
    }));
  // The signal's name is the abort reason: the chat says which one ended it.
  const interrupt = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.once(signal, () => interrupt.abort(signal));

  // --trace: the kernel's record of our connection (the rendezvous server's connection left out).
  const trace =
    options.trace &&
    startLiveTrace({
      local: options.local,
      ignoreRemotes: options.rendezvous ? [options.rendezvous.server] : [],
      write: status,
    });
  try {
    return await chat(options, prepared, interrupt.signal, trace || undefined);
  } finally {
    if (trace) await trace.stop();
  }
}

async function chat(
  options: PeerOptions,
  prepared: Awaited<ReturnType<typeof prepareDial>> | undefined,
  signal: AbortSignal,
  trace: LiveTrace | undefined,
): Promise<number> {
  const connected = options.rendezvous
    ? await punch(options, options.rendezvous, signal, trace)
    : prepared && (await dial(prepared, options, signal));
  if (connected === undefined) throw new UsageError('missing REMOTE_HOST and REMOTE_PORT');
  if (typeof connected === 'number') return connected;
  const socket = connected;

  const end = await runChat({
    socket,
    input: process.stdin,
    output: process.stdout,
    ...terminalFor(process.stdin),
    status,
    prefix: options.prefix,
    lingerMs: options.lingerMs,
    maxLineBytes: options.maxLineBytes,
    signal,
  });
  // stdin may still hold the event loop open (a terminal); we are done with it.
  process.stdin.destroy();
  switch (end.kind) {
    case 'quit':
    case 'peer-closed':
    case 'output-closed':
      return PEER_EXIT.ok;
    case 'interrupted':
      return PEER_EXIT.interrupted;
    case 'line-too-long':
      return PEER_EXIT.lineTooLong;
    case 'lost':
      return PEER_EXIT.connectionLost;
  }
}

/**
 * A terminal on stdin is read in raw mode with readline's line editing, echoing to a terminal we
 * write to: the canonical mode of the terminal itself cuts a line at 4095 bytes.
 */
function terminalFor(input: NodeJS.ReadStream): { terminal?: NodeJS.WriteStream } {
  if (!input.isTTY) return {};
  const terminal = [process.stdout, process.stderr].find((stream) => stream.isTTY);
  if (!terminal)
    status(
      'warning: stdin is a terminal but neither stdout nor stderr is: the terminal cuts typed lines at 4095 bytes',
    );
  return terminal ? { terminal } : {};
}

async function dial(
  prepared: Awaited<ReturnType<typeof prepareDial>>,
  options: PeerOptions,
  signal: AbortSignal,
): Promise<Socket | number> {
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
      signal,
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
  return socket;
}

runMain('peer', PEER_USAGE, main);
