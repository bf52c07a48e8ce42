/**
 * Manifests -> the multi-document YAML `kubectl apply -f` takes. Pure.
 */
import { stringify } from 'yaml';
import { buildManifests, type Manifest } from './manifests.ts';
import type { ClusterPlan } from './types.ts';

export function renderManifests(plan: ClusterPlan, objects: Manifest[] = buildManifests(plan)): string {
  const flags = [
    `--agents ${plan.agents}`,
    `--pairs ${plan.pairs}`,
    `--image ${plan.image}`,
    `--namespace ${plan.namespace}`,
    `--name ${plan.name}`,
    `--port ${plan.port}`,
    ...(plan.dropEarlyRst ? ['--drop-early-rst'] : []),
    ...(plan.rate === undefined ? [] : [`--rate ${plan.rate}`]),
    ...(plan.timedConnects ? ['--timed-connects'] : []),
  ];
  const header = `# simopen distributed stress run: ${plan.agents} agents, ${plan.pairs} pairs (docs/kubernetes.md)\n# written by: npm run k8s -- ${flags.join(' ')}\n`;
  return header + objects.map((object) => stringify(object.toJSON(), { lineWidth: 0 })).join('---\n');
}
