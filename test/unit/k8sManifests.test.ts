import { readFileSync } from 'node:fs';
import { Job } from 'kubernetes-models/batch/v1';
import { Namespace, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { parseAgentOptions } from '../../lib/agent/options.ts';
import { AGENT_TOKEN_ENV } from '../../lib/agent/types.ts';
import { parseAgentsRunOptions } from '../../lib/coordinator/agentsOptions.ts';
import { UsageError } from '../../lib/core/errors.ts';
import { agentNames, buildManifests } from '../../lib/k8s/manifests.ts';
import { parseK8sOptions, planFromDefaults } from '../../lib/k8s/options.ts';
import { renderManifests } from '../../lib/k8s/render.ts';
import { AGENT_INDEX_ENV, AGENT_PEERS_ENV, type ClusterPlan, TOKEN_SECRET_KEY } from '../../lib/k8s/types.ts';

const REPO = new URL('../../', import.meta.url);

/** The YAML as kubectl would read it, back into typed models, validated. */
function load(text: string): (Namespace | Service | Job)[] {
  return parseAllDocuments(text).map((document) => {
    const data = document.toJS() as { kind: string };
    const model =
      data.kind === 'Namespace'
        ? new Namespace(data as never)
        : data.kind === 'Service'
          ? new Service(data as never)
          : data.kind === 'Job'
            ? new Job(data as never)
            : undefined;
    if (!model) throw new Error(`unexpected kind ${data.kind}`);
    model.validate();
    return model;
  });
}

function pieces(plan: ClusterPlan) {
  const objects = load(renderManifests(plan));
  const service = objects.find((object) => object instanceof Service) as Service;
  const jobs = objects.filter((object) => object instanceof Job) as Job[];
  const agentJob = jobs.find((job) => job.metadata?.name === plan.agentJob) as Job;
  const coordinatorJob = jobs.find((job) => job.metadata?.name === plan.coordinatorJob) as Job;
  const namespace = objects.find((object) => object instanceof Namespace) as Namespace;
  return { objects, service, agentJob, coordinatorJob, namespace };
}

function container(job: Job) {
  const found = job.spec?.template.spec?.containers[0];
  if (!found) throw new Error('no container');
  return found;
}

function envOf(job: Job): Record<string, { value?: string; secret?: { name: string; key: string } }> {
  const env: Record<string, { value?: string; secret?: { name: string; key: string } }> = {};
  for (const variable of container(job).env ?? [])
    env[variable.name] = {
      value: variable.value,
      secret: variable.valueFrom?.secretKeyRef as { name: string; key: string } | undefined,
    };
  return env;
}

describe('Kubernetes manifests (typed models, validated offline)', () => {
  it('the committed deploy/kubernetes/simopen.yaml is what k8s.ts --drop-early-rst writes', () => {
    const committed = readFileSync(new URL('deploy/kubernetes/simopen.yaml', REPO), 'utf8');
    expect(committed).toBe(renderManifests(planFromDefaults({ dropEarlyRst: true })));
    expect(load(committed)).toHaveLength(4);
  });

  for (const plan of [
    planFromDefaults(),
    planFromDefaults({ agents: 5, name: 'load', namespace: 'perf', dropEarlyRst: true, port: 9000 }),
    planFromDefaults({ agents: 3, rate: 500, timedConnects: true }),
  ])
    it(`every object validates and is wired together (${plan.agents} agents, ${plan.namespace})`, () => {
      const { objects, service, agentJob, coordinatorJob, namespace } = pieces(plan);
      expect(objects).toHaveLength(4);
      for (const object of objects) expect(() => object.validate()).not.toThrow();
      // One namespace for everything.
      expect(namespace.metadata?.name).toBe(plan.namespace);
      for (const object of objects.slice(1)) expect(object.metadata?.namespace).toBe(plan.namespace);

      // The headless Service selects exactly the agent pods.
      expect(service.spec?.clusterIP).toBe('None');
      const podLabels = agentJob.spec?.template.metadata?.labels ?? {};
      const selector = service.spec?.selector ?? {};
      expect(Object.keys(selector).length).toBeGreaterThan(0);
      for (const [key, value] of Object.entries(selector)) expect(podLabels[key]).toBe(value);
      const coordinatorLabels = coordinatorJob.spec?.template.metadata?.labels ?? {};
      expect(Object.entries(selector).every(([key, value]) => coordinatorLabels[key] === value)).toBe(false);
      expect(service.spec?.ports?.[0]?.port).toBe(plan.port);
      expect(container(agentJob).ports?.[0]?.containerPort).toBe(plan.port);

      // One pod per index, named <job>-<index> under the Service as subdomain.
      expect(agentJob.spec?.completionMode).toBe('Indexed');
      expect(agentJob.spec?.completions).toBe(plan.agents);
      expect(agentJob.spec?.parallelism).toBe(plan.agents);
      expect(agentJob.spec?.template.spec?.subdomain).toBe(service.metadata?.name);
      const names = agentNames(plan);
      expect(names).toEqual(
        Array.from(
          { length: plan.agents },
          (_, i) => `${agentJob.metadata?.name}-${i}.${service.metadata?.name}`,
        ),
      );

      // The agents' peer list is the list the coordinator dials, in the same order, on the same port.
      const agentEnv = envOf(agentJob);
      expect(agentEnv[AGENT_PEERS_ENV]?.value).toBe(names.join(','));
      // The index is the one the Indexed Job sets: nothing overrides it.
      expect(agentEnv[AGENT_INDEX_ENV]).toBeUndefined();
      const coordinatorCommand = container(coordinatorJob).command ?? [];
      const dialled = coordinatorCommand[coordinatorCommand.indexOf('--agents') + 1];
      expect(dialled).toBe(names.map((name) => `${name}:${plan.port}`).join(','));
      expect(coordinatorCommand[coordinatorCommand.indexOf('--pairs') + 1]).toBe(String(plan.pairs));

      // Both read the token from the same Secret key, under the name the agent and coordinator read.
      for (const job of [agentJob, coordinatorJob])
        expect(envOf(job)[AGENT_TOKEN_ENV]?.secret).toEqual({ name: plan.secretName, key: TOKEN_SECRET_KEY });

      // NET_ADMIN only on the agents, only with --drop-early-rst (and then the namespace admits it).
      expect(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe(
        plan.dropEarlyRst ? 'privileged' : undefined,
      );
      const agentCaps = container(agentJob).securityContext?.capabilities;
      expect(agentCaps?.add ?? []).toEqual(plan.dropEarlyRst ? ['NET_ADMIN'] : []);
      expect(container(coordinatorJob).securityContext?.capabilities?.add).toBeUndefined();
      expect(container(agentJob).command?.includes('--drop-early-rst')).toBe(plan.dropEarlyRst);

      // The commands parse as the agent and the coordinator parse them, in a pod's environment.
      const agentArgs = (container(agentJob).command ?? []).slice(4);
      expect(agentArgs[0]).toBe('agent');
      for (let index = 0; index < plan.agents; index += 1) {
        const parsed = parseAgentOptions(agentArgs.slice(1), {
          [AGENT_TOKEN_ENV]: 'secret',
          [AGENT_PEERS_ENV]: agentEnv[AGENT_PEERS_ENV]?.value,
          [AGENT_INDEX_ENV]: String(index),
        });
        if (parsed.help) throw new Error('help');
        expect(parsed.options.name).toBe(`${plan.agentJob}-${index}`);
        expect(parsed.options.peers?.index).toBe(index);
      }
      const coordinator = parseAgentsRunOptions(
        coordinatorCommand.slice(4),
        { [AGENT_TOKEN_ENV]: 'secret' },
        2,
      );
      if (coordinator.help) throw new Error('help');
      expect(coordinator.agents.map((agent) => agent.name)).toEqual(names.map((name) => name.split('.')[0]));
      expect(coordinator.options.rate).toBe(plan.rate);
      expect(coordinator.timedConnects).toBe(plan.timedConnects);
    });

  it('a wrong field value fails validation', () => {
    const [, , job] = buildManifests(planFromDefaults()) as [Namespace, Service, Job];
    const broken = new Job({
      ...(job.toJSON() as object),
      spec: { ...job.spec, completions: 'two' },
    } as never);
    expect(() => broken.validate()).toThrow(/completions must be integer/);
    const noImage = parse(renderManifests(planFromDefaults()).split('---\n')[2] as string);
    delete noImage.spec.template.spec.containers;
    expect(() => new Job(noImage).validate()).toThrow(/containers/);
  });

  it('bad parameters are one-line usage errors', () => {
    expect(() => parseK8sOptions(['--agents', '1'])).toThrow(UsageError);
    expect(() => parseK8sOptions(['--name', 'Bad_Name'])).toThrow(/DNS label/);
    expect(() => parseK8sOptions(['--namespace', 'x'.repeat(64)])).toThrow(/DNS label/);
    expect(() => parseK8sOptions(['--image', 'a b'])).toThrow(/image/);
    expect(() => parseK8sOptions(['--port', '0'])).toThrow(/port/);
    expect(() => parseK8sOptions(['--timed-connects'])).toThrow(/needs --rate/);
  });
});
