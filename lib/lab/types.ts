/**
 * The vocabulary of the NAT lab: router behaviours (RFC 4787 / RFC 5382 terms), the topology and the
 * plan that builds it, the matrix of behaviours with its expectations, and the punch agents' messages.
 * Leaf module: types only.
 */

/** How the router picks the public port of a new connection (RFC 4787 terms). */
export type Mapping = 'eim' | 'edm';
/** Which inbound packets the router lets through to a mapped port. */
export type Filtering = 'eif' | 'apdf';
/** What the router does with an unsolicited inbound SYN. */
export type Inbound = 'drop' | 'rst';

export interface RouterBehaviour {
  mapping: Mapping;
  filtering: Filtering;
  inbound: Inbound;
  /** Percentage (0..100) of forwarded packets dropped at random. */
  lossPercent: number;
}

export interface Topology {
  /** The private hosts, in order; host i sits behind router i. */
  hosts: { name: string; router: RouterBehaviour }[];
}

export interface LabHost {
  /** Name used on the command line: alice, bob, rv, alice-nat, internet. */
  name: string;
  namespace: string;
  /** management: the network a coordinator reaches lab agents by (lib/lab/managementNetwork.ts). */
  role: 'host' | 'router' | 'rendezvous' | 'internet' | 'management';
  addresses: string[];
  behaviour?: RouterBehaviour;
}

export interface LabPlan {
  id: string;
  hosts: LabHost[];
  /** argv lists run in order by labRunner (each starts with 'ip' or 'nft'). */
  commands: string[][];
  /** Per router namespace, the nft ruleset to load (also used to reconfigure a running lab). */
  rulesets: Record<string, string>;
}

export interface LabState {
  plan: LabPlan;
  /** pid of the process that built the lab; a lab whose owner is gone and not `persistent` is an orphan. */
  ownerPid: number;
  persistent: boolean;
  /** Built inside a user namespace held by ownerPid: it lives exactly as long as that process. */
  userNamespace: boolean;
  createdAt: string;
  /** Where its state file lives: the state of the clone (and user) that made it (labState.ts). */
  stateDirectory: string;
}

/** sync: both start at the server's time and retry after a refusal; skew: bob starts late, one connect each. */
export type Timing = 'sync' | 'skew';
/** all: every punch connects; none: no punch does; some: at least one does (timing decides each). */
export type Expectation = 'all' | 'none' | 'some';

export interface MatrixRow {
  /** 1-based, stable: `lab.ts matrix --only` picks rows by it. */
  number: number;
  alice: RouterBehaviour;
  bob: RouterBehaviour;
  timing: Timing;
  expect: Expectation;
  reason: string;
}

export interface RowSummary {
  row: MatrixRow;
  punches: number;
  successes: number;
  /** Median time from the agreed start to the direct connection, over the successes. */
  medianMs: number | undefined;
  /** Connect attempts beyond the first, averaged over all punches. */
  retriesPerPunch: number;
  /** The most frequent failure code, with its first message. */
  failure?: { code: string; error: string };
  matches: boolean;
}

export interface PunchRequest {
  id: number;
  session: string;
  secret: string;
  /** The server's hello names its probe port. */
  server: { host: string; port: number };
  localPort: number;
  deadlineMs: number;
  singleAttempt: boolean;
  retryIntervalMs: number;
  extraDelayMs: number;
}

export interface PunchOutcome {
  id: number;
  ok: boolean;
  /** From the agreed start time to the direct connection. */
  elapsedMs: number;
  attempts: number;
  errors: Record<string, number>;
  code?: string;
  error?: string;
  /** The far end of the punched connection, and the line the peer sent over it. */
  remote?: string;
  received?: string;
}
