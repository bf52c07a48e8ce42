/**
 * The vocabulary of the NAT lab: router behaviours (RFC 4787 / RFC 5382 terms), the topology and the
 * plan that builds it, the matrix of behaviours with its expectations, and the punch agents' messages.
 * Leaf module: types only.
 */

/**
 * Whether the router reuses one public endpoint for an internal endpoint whatever the destination
 * (eim, RFC 4787 REQ-1) or maps every connection on its own (edm: "symmetric").
 */
export type Mapping = 'eim' | 'edm';
/**
 * How the router picks the public port of a new mapping (RFC 4787 section 4.2.1): keep the
 * internal port while it is free (preserve), the next port of a counter (sequential), or any port
 * (random).
 */
export type Allocation = 'preserve' | 'sequential' | 'random';
/**
 * Which unsolicited inbound connections reach a mapped port (RFC 4787 section 5): from anyone (eif),
 * from any port of an address the internal endpoint has sent to (adf), or only replies (apdf).
 */
export type Filtering = 'eif' | 'adf' | 'apdf';
/**
 * What the router does with an unsolicited inbound SYN: drop it, answer it with RST, with ICMP
 * "administratively prohibited", or hold it 6 s (RFC 5382 REQ-4) and answer it only if no outbound
 * SYN of the same flow came meanwhile.
 */
export type Inbound = 'drop' | 'rst' | 'icmp' | 'hold6s';

export interface RouterBehaviour {
  mapping: Mapping;
  filtering: Filtering;
  inbound: Inbound;
  /** Percentage (0..100) of forwarded packets dropped at random. */
  lossPercent: number;
  /** Default: preserve with eim, random with edm (defaultAllocation in topology.ts). */
  allocation?: Allocation;
  /** Hosts behind this router reach each other through its public address (RFC 4787 REQ-9). */
  hairpin?: boolean;
  /** An established TCP connection idle this long loses its mapping (conntrack timeout); default: the kernel's 5 days. */
  idleTimeoutMs?: number;
}

export interface TopologyHost {
  name: string;
  /** The router in front of this host (the home router, under a CGNAT). */
  router: RouterBehaviour;
  /** Sits on the LAN of this earlier host's router (hosts behind one NAT); `router` must be that host's. */
  sharesRouterWith?: string;
  /** A carrier-grade NAT in front of this host's router: a double NAT. */
  cgnat?: RouterBehaviour;
}

export interface Topology {
  /** The private hosts, in order; each sits behind a router of its own unless it shares one. */
  hosts: TopologyHost[];
}

export interface LabHost {
  /** Name used on the command line: alice, bob, rv, alice-nat, internet. */
  name: string;
  namespace: string;
  /** management: the network a coordinator reaches lab agents by (lib/lab/managementNetwork.ts). */
  role: 'host' | 'router' | 'rendezvous' | 'internet' | 'management';
  /** A router's: [WAN, LAN gateway]; a host's: [its address]. */
  addresses: string[];
  behaviour?: RouterBehaviour;
  /** For a host and for a router behind a CGNAT: the name of the router in front of it. */
  router?: string;
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

/**
 * sync: both start at the server's time and retry after a refusal; skew: bob starts 500 ms late, one
 * connect each; late: bob starts 8 s late (past RFC 5382's 6 s hold), one connect each.
 */
export type Timing = 'sync' | 'skew' | 'late';
/** Where the two punching hosts sit: behind a router each, both behind one router, alice behind a double NAT. */
export type Layout = 'two-nats' | 'one-nat' | 'double-nat';
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
  /** Default two-nats. one-nat: bob sits behind alice's router (bob's behaviour is unused). */
  layout?: Layout;
  /** double-nat: the CGNAT in front of alice's router. */
  cgnat?: RouterBehaviour;
  /** Port prediction: how many predicted ports a peer may try at once (0 or absent: off). */
  predict?: number;
  /** After connecting, both sides stay silent this long before exchanging their lines (mapping timeouts). */
  quietMs?: number;
  /** TCP keepalive on the punched connection, first probe after this long idle. */
  keepAliveMs?: number;
}

export interface RowSummary {
  row: MatrixRow;
  punches: number;
  successes: number;
  /** Median time from the agreed start to the direct connection, over the successes. */
  medianMs: number | undefined;
  /** Connect attempts beyond the first, averaged over all punches. */
  retriesPerPunch: number;
  /** Sockets that dialed (both sides together), averaged over all punches; above 2 only with port prediction. */
  socketsPerPunch?: number;
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
  /** Port prediction: at most this many predicted ports at once (0 or absent: off). */
  predict?: number;
  quietMs?: number;
  keepAliveMs?: number;
}

export interface PunchOutcome {
  id: number;
  ok: boolean;
  /** From the agreed start time to the direct connection. */
  elapsedMs: number;
  attempts: number;
  /** Sockets this side dialed with (1 without port prediction). */
  sockets?: number;
  errors: Record<string, number>;
  code?: string;
  error?: string;
  /** The far end of the punched connection, and the line the peer sent over it. */
  remote?: string;
  received?: string;
}
