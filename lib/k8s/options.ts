/**
 * `k8s.ts` command line -> a ClusterPlan. Pure: every problem is a UsageError (one line, exit 2).
 */
import { parseCount, parseFlags, parsePort } from '../core/cli.ts';
import { UsageError } from '../core/errors.ts';
import type { ClusterPlan } from './types.ts';

export const K8S_USAGE =
  'k8s.ts [--agents N] [--pairs N] [--image IMAGE] [--namespace NS] [--name NAME] [--port P] [--drop-early-rst] [--rate N [--timed-connects]] [--out FILE]';

export const DEFAULT_PLAN = {
  name: 'simopen',
  namespace: 'simopen',
  image: 'simopen:latest',
  agents: 2,
  pairs: 10_000,
  port: 7411,
} as const;

/** `k8s.ts --help` (docs/kubernetes.md quotes it). */
export const K8S_HELP = `usage: ${K8S_USAGE}

Writes the Kubernetes manifests of a distributed stress run (multi-document YAML), built from typed
Kubernetes models and validated before they are written: a Namespace, a headless Service, the agents
as one Indexed Job (one pod per index, JOB_COMPLETION_INDEX naming its shard, reachable as
<name>-agent-<index>.<name>-agents), and the coordinator as its own Job, whose log is the merged report.
The token comes from the Secret <name>-token (key "token"), which you create: it is never written here.

  --agents N        agents, one pod each (2..64; default ${DEFAULT_PLAN.agents})
  --pairs N         pairs the coordinator runs across them (default ${DEFAULT_PLAN.pairs})
  --image IMAGE     the image built from deploy/kubernetes/Dockerfile (default ${DEFAULT_PLAN.image})
  --namespace NS    the namespace of every object (default ${DEFAULT_PLAN.namespace})
  --name NAME       prefix of every object's name (default ${DEFAULT_PLAN.name})
  --port P          the agents' control port (default ${DEFAULT_PLAN.port})
  --drop-early-rst  agents drop their early RSTs with an nft table in their own pod, scoped to the
                    run's ports (the agent container gets NET_ADMIN for it, nothing else does)
  --rate N          the coordinator starts N pairs per second (open loop)
  --timed-connects  with --rate: the coordinator times both sides' connects from the clock offsets it
                    measures, and reports how close they came and how many pairs crossed (no
                    capability needed; see docs/distributed.md)
  --out FILE        write to FILE (default: stdout)

exit codes: 0 written, 1 the file could not be written, 2 bad usage`;

const flagSpec = {
  agents: { type: 'string' },
  pairs: { type: 'string' },
  image: { type: 'string' },
  namespace: { type: 'string' },
  name: { type: 'string' },
  port: { type: 'string' },
  'drop-early-rst': { type: 'boolean' },
  rate: { type: 'string' },
  'timed-connects': { type: 'boolean' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** An RFC 1123 label (names of Jobs, Services, namespaces), short enough for "<name>-agent-NN". */
function label(text: string, option: string, max: number): string {
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(text) || text.length > max)
    throw new UsageError(
      `${option}: '${text}' is not a DNS label of at most ${max} characters (lower-case letters, digits, '-')`,
    );
  return text;
}

export type ParsedK8s = { help: true } | { help: false; plan: ClusterPlan; out: string | undefined };

export function planFromDefaults(overrides: Partial<ClusterPlan> = {}): ClusterPlan {
  const name = overrides.name ?? DEFAULT_PLAN.name;
  return {
    name,
    namespace: DEFAULT_PLAN.namespace,
    image: DEFAULT_PLAN.image,
    agents: DEFAULT_PLAN.agents,
    pairs: DEFAULT_PLAN.pairs,
    port: DEFAULT_PLAN.port,
    dropEarlyRst: false,
    rate: undefined,
    timedConnects: false,
    connectTimeoutSeconds: 300,
    ttlSeconds: 3600,
    agentJob: `${name}-agent`,
    coordinatorJob: `${name}-coordinator`,
    serviceName: `${name}-agents`,
    secretName: `${name}-token`,
    ...overrides,
  };
}

export function parseK8sOptions(args: string[]): ParsedK8s {
  const { values, positionals } = parseFlags(args, flagSpec);
  if (values.help) return { help: true };
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const image = values.image ?? DEFAULT_PLAN.image;
  if (!/^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/.test(image))
    throw new UsageError(`--image: '${image}' is not an image reference`);
  const plan = planFromDefaults({
    // Pod host names are "<name>-agent-<index>": a DNS label of at most 63 characters.
    name: label(values.name ?? DEFAULT_PLAN.name, '--name', 40),
    namespace: label(values.namespace ?? DEFAULT_PLAN.namespace, '--namespace', 63),
    image,
    agents: values.agents === undefined ? DEFAULT_PLAN.agents : parseCount(values.agents, '--agents', 2, 64),
    pairs:
      values.pairs === undefined ? DEFAULT_PLAN.pairs : parseCount(values.pairs, '--pairs', 1, 100_000_000),
    port: values.port === undefined ? DEFAULT_PLAN.port : parsePort(values.port, '--port'),
    dropEarlyRst: values['drop-early-rst'] ?? false,
    rate: values.rate === undefined ? undefined : parseCount(values.rate, '--rate', 1, 10_000_000),
    timedConnects: values['timed-connects'] ?? false,
  });
  if (plan.timedConnects && plan.rate === undefined)
    throw new UsageError('--timed-connects needs --rate N: the schedule both sides of every pair keep');
  return { help: false, plan, out: values.out };
}
