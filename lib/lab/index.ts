/**
 * simopen/lab: a NAT lab of network namespaces (hosts behind emulated NAT routers, a public
 * rendezvous host) for a script: build it from a topology, run commands and scripts in its hosts,
 * tear it down. The public surface of lib/lab (docs/api.md).
 */

export type { Child } from '../core/childProcess.ts';
export { probeLab } from './buildLab.ts';
export { createLab, type ExecResult, type Lab, type LabOptions } from './createLab.ts';
export {
  DEFAULT_BEHAVIOUR,
  describeBehaviour,
  formatBehaviour,
  parseBehaviour,
  parseTopology,
  RENDEZVOUS_ADDRESS,
} from './topology.ts';
export type { Filtering, Inbound, LabHost, LabPlan, Mapping, RouterBehaviour, Topology } from './types.ts';
