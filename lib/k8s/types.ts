/**
 * The vocabulary of a stress run on Kubernetes: what the manifests are made from, and the names the
 * pods and the agents agree on (the peer list, the index, the token's secret key). Leaf module.
 */

/** An agent's index among the agents: set by an Indexed Job in every pod (and by tests the same way). */
export const AGENT_INDEX_ENV = 'JOB_COMPLETION_INDEX';
/** Every agent's name in index order, comma-separated (DNS names; an agent's name is the first label of its own). */
export const AGENT_PEERS_ENV = 'SIMOPEN_AGENT_PEERS';
/** The key of the token in the Secret the pods read. */
export const TOKEN_SECRET_KEY = 'token';

/** What the manifests are made from (scripts/k8s.ts flags). */
export interface ClusterPlan {
  /** Prefix of every object's name, and the app.kubernetes.io/part-of label. */
  name: string;
  namespace: string;
  image: string;
  agents: number;
  pairs: number;
  /** The agents' control port. */
  port: number;
  /** Agents install the early-RST table (and get NET_ADMIN for it). */
  dropEarlyRst: boolean;
  /** Open loop: the coordinator's --rate (pairs/s), or undefined. */
  rate: number | undefined;
  /** With rate: the coordinator times the connects (--timed-connects), no capability needed. */
  timedConnects: boolean;
  /** How long the coordinator keeps trying to reach the agents (pods start at different times). */
  connectTimeoutSeconds: number;
  /** Finished Jobs (and their logs) are deleted after this long. */
  ttlSeconds: number;
  agentJob: string;
  coordinatorJob: string;
  serviceName: string;
  secretName: string;
}

/** `<job>-<index>.<service>`: the pod of an Indexed Job with the headless Service as its subdomain. */
export function agentDnsName(plan: Pick<ClusterPlan, 'agentJob' | 'serviceName'>, index: number): string {
  return `${plan.agentJob}-${index}.${plan.serviceName}`;
}
