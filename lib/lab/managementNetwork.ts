/**
 * A management network for a lab: how a coordinator reaches the stress agents in the private hosts,
 * which sit behind NAT routers and cannot be reached through the data plane (and the host's own
 * network stays untouched). One more namespace holds a bridge with the coordinator's address; each
 * private host gets a second interface, mgmt0, on that bridge, with an address of its own from
 * 198.18.0.0/24 (RFC 2544's benchmarking range) and no route beyond it: control traffic never
 * crosses a router, and data traffic never takes this path. Pure: it adds to a plan (topology.ts).
 */
import { namespaceName } from './topology.ts';
import type { LabHost, LabPlan } from './types.ts';

export const MANAGEMENT_HOST = 'mgmt';
export const MANAGEMENT_INTERFACE = 'mgmt0';
/** The coordinator's address, on the management namespace's bridge. */
export const MANAGEMENT_ADDRESS = '198.18.0.1';

/** The management address of the index-th private host (alice 0, bob 1, ...). */
export function managementAddress(hostIndex: number): string {
  return `198.18.0.${10 + hostIndex}`;
}

/** The plan with the management network added (its namespace last, so teardown removes it first). */
export function withManagementNetwork(plan: LabPlan): LabPlan {
  const mgmt = namespaceName(plan.id, MANAGEMENT_HOST);
  const commands: string[][] = [
    ['ip', 'netns', 'add', mgmt],
    ['ip', '-n', mgmt, 'link', 'set', 'lo', 'up'],
    ['ip', '-n', mgmt, 'link', 'add', 'mbr0', 'type', 'bridge'],
    ['ip', '-n', mgmt, 'link', 'set', 'mbr0', 'up'],
    ['ip', '-n', mgmt, 'address', 'add', `${MANAGEMENT_ADDRESS}/24`, 'dev', 'mbr0'],
  ];
  const hosts = plan.hosts.filter((host) => host.role === 'host');
  hosts.forEach((host, index) => {
    const port = `m${index}`;
    commands.push(
      [
        'ip',
        '-n',
        host.namespace,
        'link',
        'add',
        MANAGEMENT_INTERFACE,
        'type',
        'veth',
        'peer',
        'name',
        port,
        'netns',
        mgmt,
      ],
      ['ip', '-n', mgmt, 'link', 'set', port, 'master', 'mbr0'],
      ['ip', '-n', mgmt, 'link', 'set', port, 'up'],
      [
        'ip',
        '-n',
        host.namespace,
        'address',
        'add',
        `${managementAddress(index)}/24`,
        'dev',
        MANAGEMENT_INTERFACE,
      ],
      ['ip', '-n', host.namespace, 'link', 'set', MANAGEMENT_INTERFACE, 'up'],
    );
  });
  const management: LabHost = {
    name: MANAGEMENT_HOST,
    namespace: mgmt,
    role: 'management',
    addresses: [MANAGEMENT_ADDRESS],
  };
  return { ...plan, hosts: [...plan.hosts, management], commands: [...plan.commands, ...commands] };
}
