/**
 * The Kubernetes objects of a distributed stress run, built from typed models (kubernetes-models:
 * a field of the wrong name does not compile, a value of the wrong type or a missing required field
 * fails validate()). Agents are one Indexed Job (one pod per index; JOB_COMPLETION_INDEX names its
 * shard), reachable by stable DNS names through a headless Service (`<job>-<index>.<service>`); the
 * coordinator is its own Job and prints the merged report to its log. The token comes from a Secret
 * that the user creates (it is never written into a manifest). Pure: returns the objects.
 */
import { Job } from 'kubernetes-models/batch/v1';
import { Namespace, Service } from 'kubernetes-models/v1';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import { AGENT_TOKEN_ENV } from '../agent/types.ts';
import { AGENT_PEERS_ENV, agentDnsName, type ClusterPlan, TOKEN_SECRET_KEY } from './types.ts';

export type Manifest = Namespace | Service | Job;

/** Where the image has simopen (deploy/kubernetes/Dockerfile's WORKDIR). */
export const IMAGE_WORKDIR = '/opt/simopen';

const PART_OF = 'app.kubernetes.io/part-of';
const COMPONENT = 'app.kubernetes.io/component';

function labels(plan: ClusterPlan, component: 'agent' | 'coordinator'): Record<string, string> {
  return { [PART_OF]: plan.name, [COMPONENT]: component };
}

/** The agents' control addresses in index order: what the coordinator dials and each agent checks. */
export function agentNames(plan: ClusterPlan): string[] {
  return Array.from({ length: plan.agents }, (_, index) => agentDnsName(plan, index));
}

function tokenEnv(plan: ClusterPlan): IEnvVar {
  return {
    name: AGENT_TOKEN_ENV,
    valueFrom: { secretKeyRef: { name: plan.secretName, key: TOKEN_SECRET_KEY } },
  };
}

function stressCommand(args: string[]): string[] {
  return ['node', '--import', 'tsx', 'scripts/stress.ts', ...args];
}

function agentContainer(plan: ClusterPlan): IContainer {
  const args = ['agent', '--listen', `0.0.0.0:${plan.port}`, '--once'];
  if (plan.dropEarlyRst) args.push('--drop-early-rst');
  return {
    name: 'agent',
    image: plan.image,
    imagePullPolicy: 'IfNotPresent',
    workingDir: IMAGE_WORKDIR,
    command: stressCommand(args),
    env: [
      tokenEnv(plan),
      // The same list the coordinator is given: an agent whose list or index differs refuses the run.
      { name: AGENT_PEERS_ENV, value: agentNames(plan).join(',') },
      // The agent's index is JOB_COMPLETION_INDEX, which the Indexed Job sets in every pod.
    ],
    ports: [{ name: 'control', containerPort: plan.port, protocol: 'TCP' }],
    // NET_ADMIN only for the early-RST table, and only in the pod's own network namespace.
    securityContext: plan.dropEarlyRst
      ? { capabilities: { add: ['NET_ADMIN'] } }
      : { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
  };
}

export function buildManifests(plan: ClusterPlan): Manifest[] {
  const namespace = plan.namespace;
  const agentLabels = labels(plan, 'agent');
  const names = agentNames(plan);
  const objects: Manifest[] = [];
  objects.push(
    new Namespace({
      metadata: {
        name: namespace,
        labels: {
          [PART_OF]: plan.name,
          // NET_ADMIN is beyond the baseline Pod Security level: the namespace made for the run admits it.
          ...(plan.dropEarlyRst ? { 'pod-security.kubernetes.io/enforce': 'privileged' } : {}),
        },
      },
    }),
  );
  objects.push(
    new Service({
      metadata: { name: plan.serviceName, namespace, labels: agentLabels },
      spec: {
        clusterIP: 'None',
        // Agents have no readiness probe: their names resolve as soon as the pods have addresses.
        publishNotReadyAddresses: true,
        selector: agentLabels,
        ports: [{ name: 'control', port: plan.port, targetPort: plan.port, protocol: 'TCP' }],
      },
    }),
  );
  objects.push(
    new Job({
      metadata: { name: plan.agentJob, namespace, labels: agentLabels },
      spec: {
        completionMode: 'Indexed',
        completions: plan.agents,
        parallelism: plan.agents,
        // A lost agent is reported by the coordinator; a restarted one would not be in its run.
        backoffLimit: 0,
        ttlSecondsAfterFinished: plan.ttlSeconds,
        template: {
          metadata: { labels: agentLabels },
          spec: {
            // With the Indexed Job's pod host names <job>-<index>, this gives <job>-<index>.<service>.
            subdomain: plan.serviceName,
            restartPolicy: 'Never',
            containers: [agentContainer(plan)],
          },
        },
      },
    }),
  );
  const coordinatorArgs = [
    '--agents',
    names.map((name) => `${name}:${plan.port}`).join(','),
    '--pairs',
    String(plan.pairs),
    '--connect-timeout',
    `${plan.connectTimeoutSeconds}s`,
    ...(plan.rate === undefined ? [] : ['--rate', String(plan.rate)]),
    ...(plan.timedConnects ? ['--timed-connects'] : []),
  ];
  objects.push(
    new Job({
      metadata: { name: plan.coordinatorJob, namespace, labels: labels(plan, 'coordinator') },
      spec: {
        completions: 1,
        parallelism: 1,
        backoffLimit: 0,
        ttlSecondsAfterFinished: plan.ttlSeconds,
        template: {
          metadata: { labels: labels(plan, 'coordinator') },
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'coordinator',
                image: plan.image,
                imagePullPolicy: 'IfNotPresent',
                workingDir: IMAGE_WORKDIR,
                command: stressCommand(coordinatorArgs),
                env: [tokenEnv(plan)],
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
              },
            ],
          },
        },
      },
    }),
  );
  for (const object of objects) object.validate();
  return objects;
}
