/**
 * `stress.ts agent` command line -> typed, validated options. Pure but for the environment (the token
 * may come from SIMOPEN_AGENT_TOKEN, so it stays out of the process list): every problem is a
 * UsageError (one line, exit 2) before the agent listens.
 */
import os from 'node:os';
import { parseCount, parseDuration, parseFlags, parseHostPort } from '../core/cli.ts';
import { UsageError } from '../core/errors.ts';
import { AGENT_INDEX_ENV, AGENT_PEERS_ENV } from '../k8s/types.ts';
import type { AgentOptions } from './agentServer.ts';
import { agentNameOf, parsePeerList } from './peerList.ts';
import { AGENT_TOKEN_ENV, DEFAULT_SILENCE_MS, HEARTBEAT_MS } from './types.ts';

export const AGENT_USAGE =
  'stress.ts agent --listen ADDR:PORT [--token T] [--name NAME] [--workers N] [--once] [--silence D] [--peers LIST [--index I]] [--drop-early-rst]';

/** `stress.ts agent --help` (docs/distributed.md quotes it). */
export const AGENT_HELP = `usage: ${AGENT_USAGE}

A stress agent: runs its side of the pairs a coordinator (stress.ts) plans across agents, in a pool
of worker threads, in the network location it was started in (a lab host, a machine, a pod).

  --listen ADDR:PORT   where the coordinator connects (port 0: any free port; the line
                       "listening on ADDR:PORT" on stdout says which)
  --token T            the shared secret; both ends prove they know it (HMAC challenge-response), it
                       never crosses the network. Default: the ${AGENT_TOKEN_ENV} environment variable
                       (keeps it out of the process list)
  --name NAME          how reports name this agent (default: the host name)
  --workers N          worker threads (default: one per core; the coordinator may ask for another number)
  --once               serve one coordinator, then exit (0 if its run finished, 1 if it was lost)
  --silence D          a coordinator that sends nothing for this long is gone: its run is cancelled
                       (default ${DEFAULT_SILENCE_MS / 1000}s; it pings every ${HEARTBEAT_MS / 1000}s)
  --peers LIST         every agent of the run, in order, as the coordinator's --agents names them
                       (host names or addresses, comma-separated; default: the ${AGENT_PEERS_ENV}
                       environment variable). The agent's name becomes its entry's first label, and it
                       refuses a run whose agents, order or peer addresses differ, naming the difference
  --index I            this agent's place in --peers, from 0 (default: ${AGENT_INDEX_ENV}, which a
                       Kubernetes Indexed Job sets)
  --drop-early-rst     (root or NET_ADMIN) for each run, an nft table drops the RSTs this host sends
                       to its peers from the run's ports while the peer's SYN is early; removed when
                       the run ends and on every exit (one left by a SIGKILL: by the next agent)

One coordinator at a time. A wrong token, a malformed or oversized control frame, another protocol
version: the connection is refused or dropped, with a line on stderr, and the agent goes on serving.
exit codes: 0 ok, 1 the agent could not listen or (--once) its coordinator was lost, 2 bad usage,
            130 interrupted (SIGINT, SIGTERM, SIGHUP: the run in flight is cancelled first)`;

const flagSpec = {
  listen: { type: 'string' },
  token: { type: 'string' },
  name: { type: 'string' },
  workers: { type: 'string' },
  once: { type: 'boolean' },
  silence: { type: 'string' },
  peers: { type: 'string' },
  index: { type: 'string' },
  'drop-early-rst': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type ParsedAgent = { help: true } | { help: false; options: AgentOptions };

export function parseAgentOptions(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  cores = os.availableParallelism(),
): ParsedAgent {
  const { values, positionals } = parseFlags(args, flagSpec);
  if (values.help) return { help: true };
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (values.listen === undefined) throw new UsageError('--listen ADDR:PORT is required');
  const listen = /:0$/.test(values.listen)
    ? { ...parseHostPort(values.listen.replace(/:0$/, ':1'), '--listen'), port: 0 }
    : parseHostPort(values.listen, '--listen');
  const token = values.token ?? env[AGENT_TOKEN_ENV];
  if (!token) throw new UsageError(`an agent needs the shared token: --token T or ${AGENT_TOKEN_ENV}`);
  const peersText = values.peers ?? env[AGENT_PEERS_ENV];
  if (values.index !== undefined && peersText === undefined)
    throw new UsageError(`--index goes with --peers (or ${AGENT_PEERS_ENV})`);
  const peers =
    peersText === undefined
      ? undefined
      : parsePeerList(
          peersText,
          values.index ?? env[AGENT_INDEX_ENV],
          values.index !== undefined ? '--index' : `--index or ${AGENT_INDEX_ENV}`,
        );
  const name = values.name ?? (peers ? agentNameOf(peers.names[peers.index] as string) : os.hostname());
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name))
    throw new UsageError(`--name: '${name}' is not 1..63 of letters, digits, '.', '_', '-'`);
  const workers = values.workers === undefined ? cores : parseCount(values.workers, '--workers', 1, 256);
  const silenceMs =
    values.silence === undefined ? DEFAULT_SILENCE_MS : parseDuration(values.silence, '--silence');
  if (silenceMs < 2 * HEARTBEAT_MS)
    throw new UsageError(
      `--silence: at least ${(2 * HEARTBEAT_MS) / 1000}s (the coordinator pings every ${HEARTBEAT_MS / 1000}s)`,
    );
  return {
    help: false,
    options: {
      listen,
      token,
      name,
      workers,
      once: values.once ?? false,
      silenceMs,
      ...(peers ? { peers } : {}),
      dropEarlyRst: values['drop-early-rst'] ?? false,
    },
  };
}
