/**
 * The NAT lab as data: a topology description (routers and their behaviours) turned into the exact
 * `ip` and `nft` commands that build it. Pure: nothing here touches the system (see labRunner.ts).
 *
 * Shape: an "internet" namespace holding a bridge; on it a public rendezvous host (rv, 203.0.113.10)
 * and one NAT router per private host (WAN 203.0.113.N+1, LAN 10.0.N+1.1); behind each router one
 * host (10.0.N+1.2). Every link is a veth pair created directly inside lab namespaces, so the host's
 * own namespace never sees a lab interface.
 */
import { UsageError } from '../core/errors.ts';
import type { Filtering, Inbound, LabHost, LabPlan, Mapping, RouterBehaviour, Topology } from './types.ts';

export const DEFAULT_BEHAVIOUR: RouterBehaviour = {
  mapping: 'eim',
  filtering: 'apdf',
  inbound: 'drop',
  lossPercent: 0,
};

export const HOST_NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'] as const;
export const NAMESPACE_PREFIX = 'simopen-lab-';
/** A lab id: part of every namespace name, so short (namespace names are file names under /run/netns). */
export const LAB_ID = /^[a-z0-9]{1,12}$/;
export const RENDEZVOUS_HOST = 'rv';
export const RENDEZVOUS_ADDRESS = '203.0.113.10';
/** The nft table every router gets; one name so reconfiguring replaces it whole. */
export const ROUTER_TABLE = 'simopen_lab';

export const MAPPING_TEXT: Record<Mapping, string> = {
  eim: 'endpoint-independent mapping, port-preserving',
  edm: 'endpoint-dependent mapping, random ports (symmetric)',
};
export const FILTERING_TEXT: Record<Filtering, string> = {
  eif: 'endpoint-independent filtering',
  apdf: 'address-and-port-dependent filtering',
};
export const INBOUND_TEXT: Record<Inbound, string> = {
  drop: 'unsolicited SYN dropped',
  rst: 'unsolicited SYN answered with RST',
};

/**
 * "eim:apdf:drop:5" -> behaviour; fields may be given in any order, missing ones take defaults, and
 * each at most once: "eim:edm" names two mappings, which is a mistake, not a choice of the last.
 */
export function parseBehaviour(text: string): RouterBehaviour {
  const behaviour = { ...DEFAULT_BEHAVIOUR };
  const given = new Map<keyof RouterBehaviour, string>();
  const set = <K extends keyof RouterBehaviour>(key: K, value: RouterBehaviour[K], field: string) => {
    const earlier = given.get(key);
    if (earlier !== undefined)
      throw new UsageError(
        `router '${text}': ${key === 'lossPercent' ? 'loss' : key} given twice ('${earlier}' and '${field}')`,
      );
    given.set(key, field);
    behaviour[key] = value;
  };
  for (const field of text.split(':').filter(Boolean)) {
    if (field === 'eim' || field === 'edm') set('mapping', field, field);
    else if (field === 'symmetric') set('mapping', 'edm', field);
    else if (field === 'eif' || field === 'apdf') set('filtering', field, field);
    else if (field === 'drop' || field === 'rst') set('inbound', field, field);
    else if (/^\d+(\.\d+)?%?$/.test(field)) {
      const loss = Number(field.replace('%', ''));
      if (loss > 100) throw new UsageError(`router '${text}': loss ${loss}% is over 100`);
      set('lossPercent', loss, field);
    } else
      throw new UsageError(
        `router '${text}': unknown field '${field}' (expected eim|edm, eif|apdf, drop|rst, LOSS%)`,
      );
  }
  return behaviour;
}

/** "eim:apdf:drop,edm:apdf:rst" -> topology with alice, bob, ...; empty text = two default routers. */
export function parseTopology(text: string | undefined): Topology {
  const parts = text ? text.split(',') : ['', ''];
  if (parts.length < 1 || parts.length > HOST_NAMES.length)
    throw new UsageError(`topology: 1..${HOST_NAMES.length} routers, got ${parts.length}`);
  return {
    hosts: parts.map((part, index) => ({ name: HOST_NAMES[index] as string, router: parseBehaviour(part) })),
  };
}

export function formatBehaviour(behaviour: RouterBehaviour): string {
  const loss = behaviour.lossPercent ? `:${behaviour.lossPercent}%` : '';
  return `${behaviour.mapping}:${behaviour.filtering}:${behaviour.inbound}${loss}`;
}

export function describeBehaviour(behaviour: RouterBehaviour): string {
  const loss = behaviour.lossPercent ? `, ${behaviour.lossPercent}% loss` : '';
  return `${MAPPING_TEXT[behaviour.mapping]}, ${FILTERING_TEXT[behaviour.filtering]}, ${INBOUND_TEXT[behaviour.inbound]}${loss}`;
}

export function namespaceName(labId: string, host: string): string {
  return `${NAMESPACE_PREFIX}${labId}-${host}`;
}

export function routerName(host: string): string {
  return `${host}-nat`;
}

/**
 * The nft ruleset of one NAT router. Masquerade keeps the source port when it is free (EIM,
 * port-preserving); `masquerade random` picks a fresh random port per connection (EDM). Replies and
 * the crossing SYN of a simultaneous open pass as conntrack `established`; anything else arriving on
 * the WAN is unsolicited. EIF is emulated by remembering each LAN source port (equal to the mapped
 * port when it is preserved) and forwarding any inbound connection to it back to the host.
 */
export function routerRuleset(behaviour: RouterBehaviour, hostAddress: string): string {
  const eif = behaviour.filtering === 'eif';
  const refuse = behaviour.inbound === 'rst' ? 'reject with tcp reset' : 'drop';
  const loss = behaviour.lossPercent
    ? // numgen random mod 10000 gives 0.01% steps.
      [`    numgen random mod 10000 < ${Math.round(behaviour.lossPercent * 100)} drop`]
    : [];
  const lines = [
    // Declaring then deleting makes the load idempotent: reconfiguring replaces the whole table.
    `table ip ${ROUTER_TABLE}`,
    `delete table ip ${ROUTER_TABLE}`,
    `table ip ${ROUTER_TABLE} {`,
    ...(eif ? ['  set mapped {', '    type inet_service', '    flags timeout', '    timeout 5m', '  }'] : []),
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...(eif ? [`    iifname "wan" ct state new tcp dport @mapped dnat to ${hostAddress}`] : []),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    behaviour.mapping === 'edm' ? '    oifname "wan" masquerade random' : '    oifname "wan" masquerade',
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    ...loss,
    '    ct state established,related accept',
    eif
      ? '    iifname "lan" oifname "wan" update @mapped { tcp sport } accept'
      : '    iifname "lan" oifname "wan" accept',
    ...(eif ? ['    iifname "wan" ct status dnat accept'] : []),
    `    iifname "wan" tcp flags & (syn|ack) == syn ${refuse}`,
    '  }',
    // Without this the router itself would answer a SYN addressed to its public address with RST
    // (nobody listens there), whatever the behaviour asked for.
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    ...loss,
    '    iifname "wan" ct state established,related accept',
    `    iifname "wan" tcp flags & (syn|ack) == syn ${refuse}`,
    '    iifname "wan" meta l4proto tcp drop',
    '  }',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

/** Everything needed to build the lab, in order. */
export function planLab(labId: string, topology: Topology): LabPlan {
  if (!LAB_ID.test(labId)) throw new Error(`lab id '${labId}' must be 1..12 of [a-z0-9]`);
  const ns = (host: string) => namespaceName(labId, host);
  const internet = ns('internet');
  const rv = ns(RENDEZVOUS_HOST);
  const hosts: LabHost[] = [
    { name: 'internet', namespace: internet, role: 'internet', addresses: [] },
    { name: RENDEZVOUS_HOST, namespace: rv, role: 'rendezvous', addresses: [RENDEZVOUS_ADDRESS] },
  ];
  const commands: string[][] = [];
  const rulesets: Record<string, string> = {};
  const addNamespace = (name: string) => {
    commands.push(['ip', 'netns', 'add', name], ['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  };
  // veth pair created inside `a` with its peer moved straight into `b`.
  const link = (a: string, aName: string, b: string, bName: string) => {
    commands.push(['ip', '-n', a, 'link', 'add', aName, 'type', 'veth', 'peer', 'name', bName, 'netns', b]);
  };
  const up = (name: string, device: string) => commands.push(['ip', '-n', name, 'link', 'set', device, 'up']);
  const address = (name: string, device: string, cidr: string) =>
    commands.push(['ip', '-n', name, 'address', 'add', cidr, 'dev', device]);

  addNamespace(internet);
  commands.push(['ip', '-n', internet, 'link', 'add', 'br0', 'type', 'bridge']);
  up(internet, 'br0');

  addNamespace(rv);
  link(rv, 'eth0', internet, 'rv');
  commands.push(['ip', '-n', internet, 'link', 'set', 'rv', 'master', 'br0']);
  up(internet, 'rv');
  address(rv, 'eth0', `${RENDEZVOUS_ADDRESS}/24`);
  up(rv, 'eth0');

  topology.hosts.forEach((host, index) => {
    const router = ns(routerName(host.name));
    const lan = ns(host.name);
    const wanAddress = `203.0.113.${index + 1}`;
    const gateway = `10.0.${index + 1}.1`;
    const hostAddress = `10.0.${index + 1}.2`;
    const port = `r${index}`;
    addNamespace(router);
    addNamespace(lan);
    link(router, 'wan', internet, port);
    commands.push(['ip', '-n', internet, 'link', 'set', port, 'master', 'br0']);
    up(internet, port);
    address(router, 'wan', `${wanAddress}/24`);
    up(router, 'wan');
    link(router, 'lan', lan, 'eth0');
    address(router, 'lan', `${gateway}/24`);
    up(router, 'lan');
    address(lan, 'eth0', `${hostAddress}/24`);
    up(lan, 'eth0');
    commands.push(['ip', '-n', lan, 'route', 'add', 'default', 'via', gateway]);
    commands.push(['ip', 'netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    rulesets[router] = routerRuleset(host.router, hostAddress);
    hosts.push(
      {
        name: routerName(host.name),
        namespace: router,
        role: 'router',
        addresses: [wanAddress, gateway],
        behaviour: host.router,
      },
      { name: host.name, namespace: lan, role: 'host', addresses: [hostAddress] },
    );
  });
  return { id: labId, hosts, commands, rulesets };
}
