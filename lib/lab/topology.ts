/**
 * The NAT lab as data: a topology description (routers and their behaviours) turned into the exact
 * `ip` and `nft` commands that build it. Pure: nothing here touches the system (see labRunner.ts).
 *
 * Shape: an "internet" namespace holding a bridge; on it a public rendezvous host (rv, 203.0.113.10)
 * and one NAT router per private host (WAN 203.0.113.N+1, LAN 10.0.N+1.1); behind each router one
 * host (10.0.N+1.2). Every link is a veth pair created directly inside lab namespaces, so the host's
 * own namespace never sees a lab interface.
 */
import { parseDuration } from '../core/cli.ts';
import { UsageError } from '../core/errors.ts';
import type {
  Allocation,
  Filtering,
  Inbound,
  LabHost,
  LabPlan,
  Mapping,
  RouterBehaviour,
  Topology,
  TopologyHost,
} from './types.ts';

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
/** Public ports that sequential and (endpoint-independent) random allocation hand out. */
export const ALLOCATED_PORT_COUNT = 4096;
export const ALLOCATED_PORTS = { first: 20_000, last: 20_000 + ALLOCATED_PORT_COUNT - 1 } as const;
/** RFC 5382 REQ-4: an unsolicited SYN is not answered for at least this long. */
export const HOLD_MS = 6000;
/** How long a held SYN's flow is remembered, so a retransmission after the hold is answered. */
export const HOLD_MEMORY_S = 60;
/** Lifetime of the router's own mapping records (refreshed by every outbound packet) unless idle= says otherwise. */
export const MAPPING_RECORD_S = 300;

export const MAPPING_TEXT: Record<Mapping, string> = {
  eim: 'endpoint-independent mapping',
  edm: 'endpoint-dependent mapping (symmetric)',
};
export const ALLOCATION_TEXT: Record<Allocation, string> = {
  preserve: 'port-preserving',
  sequential: 'sequential ports',
  random: 'random ports',
};
export const FILTERING_TEXT: Record<Filtering, string> = {
  eif: 'endpoint-independent filtering',
  adf: 'address-dependent filtering',
  apdf: 'address-and-port-dependent filtering',
};
export const INBOUND_TEXT: Record<Inbound, string> = {
  drop: 'unsolicited SYN dropped',
  rst: 'unsolicited SYN answered with RST',
  icmp: 'unsolicited SYN answered with ICMP administratively prohibited',
  hold6s:
    'unsolicited SYN held 6 s, then answered with ICMP port unreachable unless an outbound SYN of its flow came (RFC 5382 REQ-4)',
};

/** preserve with eim (today's masquerade), random with edm (masquerade random). */
export function defaultAllocation(mapping: Mapping): Allocation {
  return mapping === 'eim' ? 'preserve' : 'random';
}

export function allocationOf(behaviour: RouterBehaviour): Allocation {
  return behaviour.allocation ?? defaultAllocation(behaviour.mapping);
}

const FIELDS =
  'eim|edm, preserve|sequential|random, eif|adf|apdf, drop|rst|icmp|hold6s, hairpin, idle=D, LOSS%';

/**
 * "eim:apdf:drop:5" -> behaviour; fields may be given in any order, missing ones take defaults, and
 * each at most once: "eim:edm" names two mappings, which is a mistake, not a choice of the last.
 */
export function parseBehaviour(text: string): RouterBehaviour {
  const behaviour: RouterBehaviour = { ...DEFAULT_BEHAVIOUR };
  const given = new Map<keyof RouterBehaviour, string>();
  const names: Partial<Record<keyof RouterBehaviour, string>> = {
    lossPercent: 'loss',
    idleTimeoutMs: 'idle',
  };
  const set = <K extends keyof RouterBehaviour>(key: K, value: RouterBehaviour[K], field: string) => {
    const earlier = given.get(key);
    if (earlier !== undefined)
      throw new UsageError(
        `router '${text}': ${names[key] ?? key} given twice ('${earlier}' and '${field}')`,
      );
    given.set(key, field);
    behaviour[key] = value;
  };
  for (const field of text.split(':').filter(Boolean)) {
    if (field === 'eim' || field === 'edm') set('mapping', field, field);
    else if (field === 'symmetric') set('mapping', 'edm', field);
    else if (field === 'preserve' || field === 'sequential' || field === 'random')
      set('allocation', field, field);
    else if (field === 'eif' || field === 'adf' || field === 'apdf') set('filtering', field, field);
    else if (field === 'drop' || field === 'rst' || field === 'icmp' || field === 'hold6s')
      set('inbound', field, field);
    else if (field === 'hairpin') set('hairpin', true, field);
    else if (field.startsWith('idle=')) {
      const ms = parseDuration(field.slice('idle='.length), `router '${text}': idle`);
      if (ms < 1000 || ms % 1000 !== 0)
        throw new UsageError(
          `router '${text}': idle must be whole seconds, at least 1s (conntrack counts seconds)`,
        );
      set('idleTimeoutMs', ms, field);
    } else if (/^\d+(\.\d+)?%?$/.test(field)) {
      const loss = Number(field.replace('%', ''));
      if (loss > 100) throw new UsageError(`router '${text}': loss ${loss}% is over 100`);
      set('lossPercent', loss, field);
    } else throw new UsageError(`router '${text}': unknown field '${field}' (expected ${FIELDS})`);
  }
  if (behaviour.mapping === 'edm' && behaviour.allocation === 'preserve')
    throw new UsageError(
      `router '${text}': edm with preserve is eim here (Linux NAT keeps a free port for every destination, so a port-preserving mapping is endpoint-independent until a clash); use eim:preserve, or edm with sequential or random`,
    );
  // The default allocation is implied, not stored: eim:preserve and eim are one behaviour.
  if (behaviour.allocation === defaultAllocation(behaviour.mapping)) delete behaviour.allocation;
  return behaviour;
}

/**
 * "eim:apdf:drop,edm:apdf:rst" -> topology with alice, bob, ...; empty text = two default routers.
 * Each comma-separated site is [CGNAT/]ROUTER[*N]: N hosts (default 1) behind ROUTER, and with a
 * CGNAT, ROUTER behind that carrier-grade NAT (a double NAT).
 */
export function parseTopology(text: string | undefined): Topology {
  const sites = text ? text.split(',') : ['', ''];
  const hosts: TopologyHost[] = [];
  for (const site of sites) {
    const counted = /^(.*)\*(\d+)$/.exec(site);
    const count = counted ? Number(counted[2]) : 1;
    if (!Number.isInteger(count) || count < 1)
      throw new UsageError(`site '${site}': '*${counted?.[2]}' must be 1 or more hosts`);
    const routers = (counted ? (counted[1] as string) : site).split('/');
    if (routers.length > 2)
      throw new UsageError(`site '${site}': at most two routers deep (CGNAT/ROUTER), got ${routers.length}`);
    const router = parseBehaviour(routers.at(-1) as string);
    const cgnat = routers.length === 2 ? parseBehaviour(routers[0] as string) : undefined;
    const first = hosts.length;
    for (let k = 0; k < count; k++) {
      const name = HOST_NAMES[hosts.length];
      if (name === undefined)
        throw new UsageError(`topology: at most ${HOST_NAMES.length} hosts (${HOST_NAMES.join(', ')})`);
      hosts.push({
        name,
        router,
        ...(k > 0 ? { sharesRouterWith: HOST_NAMES[first] as string } : {}),
        ...(cgnat ? { cgnat } : {}),
      });
    }
  }
  return { hosts };
}

export function formatBehaviour(behaviour: RouterBehaviour): string {
  const allocation = behaviour.allocation && behaviour.allocation !== defaultAllocation(behaviour.mapping);
  return [
    behaviour.mapping,
    ...(allocation ? [behaviour.allocation] : []),
    behaviour.filtering,
    behaviour.inbound,
    ...(behaviour.hairpin ? ['hairpin'] : []),
    ...(behaviour.idleTimeoutMs ? [`idle=${behaviour.idleTimeoutMs / 1000}s`] : []),
    ...(behaviour.lossPercent ? [`${behaviour.lossPercent}%`] : []),
  ].join(':');
}

export function describeBehaviour(behaviour: RouterBehaviour): string {
  return [
    `${MAPPING_TEXT[behaviour.mapping]}, ${ALLOCATION_TEXT[allocationOf(behaviour)]}`,
    FILTERING_TEXT[behaviour.filtering],
    INBOUND_TEXT[behaviour.inbound],
    ...(behaviour.hairpin ? ['hairpinning'] : []),
    ...(behaviour.idleTimeoutMs
      ? [`idle TCP mappings expire after ${behaviour.idleTimeoutMs / 1000} s`]
      : []),
    ...(behaviour.lossPercent ? [`${behaviour.lossPercent}% loss`] : []),
  ].join(', ');
}

export function namespaceName(labId: string, host: string): string {
  return `${NAMESPACE_PREFIX}${labId}-${host}`;
}

export function routerName(host: string): string {
  return `${host}-nat`;
}

export function cgnatName(host: string): string {
  return `${host}-cgnat`;
}

const SYN = 'tcp flags & (syn|ack) == syn';
/** Conntrack mark of a hairpinned connection. */
const HAIRPIN_MARK = '0x68';
const HELD_FLOW = 'ip saddr . tcp sport . tcp dport';

/** The rules a chain uses on an unsolicited inbound SYN (from the WAN), for one Inbound behaviour. */
function refuseRules(inbound: Inbound): string[] {
  const on = `iifname "wan" ${SYN}`;
  switch (inbound) {
    case 'drop':
      return [`    ${on} drop`];
    case 'rst':
      return [`    ${on} reject with tcp reset`];
    case 'icmp':
      return [`    ${on} reject with icmp type admin-prohibited`];
    case 'hold6s':
      // Held: dropped, and its flow remembered in @held (6 s) and @answer (longer). A retransmission
      // within the hold is dropped too; the first one after it is answered (and forgotten, so a
      // later SYN of the flow is held anew). An outbound SYN of the flow deletes both (postrouting).
      return [
        `    ${on} ${HELD_FLOW} @held drop`,
        `    ${on} ${HELD_FLOW} @answer delete @answer { ${HELD_FLOW} } reject with icmp type port-unreachable`,
        `    ${on} add @held { ${HELD_FLOW} } add @answer { ${HELD_FLOW} } drop`,
      ];
  }
}

/**
 * The nft ruleset of one NAT router (docs/lab.md lists what each behaviour installs).
 *
 * Allocation: preserve is `masquerade` (the kernel keeps the source port while the tuple is free,
 * else picks a random one); edm:random is `masquerade random`; sequential is a counter (`numgen
 * inc`) and eim:random a random number (`numgen random`), both over ALLOCATED_PORTS. Endpoint-
 * independence beyond port preservation is a map (@eim) from internal to public port, filled from
 * the first answer an internal endpoint gets and used by its every later connection.
 *
 * Filtering: replies and the crossing SYN of a simultaneous open pass as conntrack `established`.
 * Every outbound packet records its mapping (@inbound: public port -> internal endpoint) after
 * translation; eif lets a new inbound connection to a recorded port in (dnat through @inbound), adf
 * only from an address the mapping has sent to (@contacted). Anything else arriving on the WAN is
 * unsolicited: refuseRules. `wanAddress` is needed for hairpinning only. The host address is not
 * used (an inbound connection goes to the internal endpoint its mapping records); it stays in the
 * signature for callers.
 */
export function routerRuleset(
  behaviour: RouterBehaviour,
  _hostAddress: string,
  wanAddress?: string,
  counterStart = 0,
): string {
  const allocation = allocationOf(behaviour);
  const { filtering, inbound, mapping } = behaviour;
  const dnatIn = filtering !== 'apdf';
  const hairpin = behaviour.hairpin === true;
  if (hairpin && !wanAddress) throw new Error("routerRuleset: hairpinning needs the router's WAN address");
  const idleS = behaviour.idleTimeoutMs ? Math.round(behaviour.idleTimeoutMs / 1000) : undefined;
  const recordS = idleS ?? MAPPING_RECORD_S;
  const eimMap = mapping === 'eim' && allocation !== 'preserve';
  const pick = `numgen ${allocation === 'sequential' ? 'inc' : 'random'} mod ${ALLOCATED_PORT_COUNT}`;
  const needsInbound = dnatIn || hairpin;
  const loss = behaviour.lossPercent
    ? // numgen random mod 10000 gives 0.01% steps.
      [`    numgen random mod 10000 < ${Math.round(behaviour.lossPercent * 100)} drop`]
    : [];
  // Only a SYN opens a mapping: conntrack would otherwise pick a connection up from its middle (a
  // mapping that timed out would come back, and a stray packet of a forgotten connection would take
  // a sequential port).
  const noPickup = ['    ct state new tcp flags & (syn|ack) != syn drop'];
  const translate =
    allocation === 'preserve'
      ? ['    oifname "wan" masquerade']
      : mapping === 'edm' && allocation === 'random'
        ? ['    oifname "wan" masquerade random']
        : [
            ...(eimMap
              ? ['    oifname "wan" meta l4proto tcp masquerade to : ip saddr . tcp sport map @eim']
              : []),
            `    oifname "wan" meta l4proto tcp masquerade to : ${pick} map @ports`,
            '    oifname "wan" masquerade',
          ];
  const set = (name: string, type: string, timeoutS: number) => [
    `  set ${name} {`,
    `    type ${type}`,
    '    flags timeout',
    `    timeout ${timeoutS}s`,
    '  }',
  ];
  const map = (name: string, type: string, timeoutS: number) => [
    `  map ${name} {`,
    `    type ${type}`,
    '    flags timeout',
    `    timeout ${timeoutS}s`,
    '  }',
  ];
  const lines = [
    // Declaring then deleting makes the load idempotent: reconfiguring replaces the whole table.
    `table ip ${ROUTER_TABLE}`,
    `delete table ip ${ROUTER_TABLE}`,
    `table ip ${ROUTER_TABLE} {`,
    ...(allocation !== 'preserve' && !(mapping === 'edm' && allocation === 'random')
      ? [
          // numgen yields a number in host byte order, a port is in network order: a map turns one
          // into the other (n -> first port + n, shifted by counterStart so a reloaded counter goes
          // on where the old one stopped).
          '  map ports {',
          `    typeof numgen inc mod ${ALLOCATED_PORT_COUNT} : tcp sport`,
          `    elements = { ${Array.from({ length: ALLOCATED_PORT_COUNT }, (_, n) => `${n} : ${ALLOCATED_PORTS.first + ((n + counterStart) % ALLOCATED_PORT_COUNT)}`).join(', ')} }`,
          '  }',
        ]
      : []),
    ...(eimMap ? map('eim', 'ipv4_addr . inet_service : inet_service', recordS) : []),
    ...(needsInbound ? map('inbound', 'inet_service : ipv4_addr . inet_service', recordS) : []),
    ...(filtering === 'adf' ? set('contacted', 'ipv4_addr . inet_service', recordS) : []),
    ...(inbound === 'hold6s'
      ? [
          ...set('held', 'ipv4_addr . inet_service . inet_service', HOLD_MS / 1000),
          ...set('answer', 'ipv4_addr . inet_service . inet_service', HOLD_MEMORY_S),
        ]
      : []),
    ...(idleS
      ? [
          '  ct timeout idle {',
          '    protocol tcp',
          '    l3proto ip',
          `    policy = { established: ${idleS} }`,
          '  }',
          // Attached to a new, not yet confirmed conntrack entry: after conntrack, before confirmation.
          '  chain timeouts {',
          '    type filter hook prerouting priority filter; policy accept;',
          '    ct timeout set "idle"',
          '  }',
        ]
      : []),
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...(filtering === 'eif'
      ? ['    iifname "wan" ct state new dnat ip addr . port to tcp dport map @inbound']
      : filtering === 'adf'
        ? [
            '    iifname "wan" ct state new ip saddr . tcp dport @contacted dnat ip addr . port to tcp dport map @inbound',
          ]
        : []),
    ...(hairpin
      ? [
          `    iifname "lan" ip daddr ${wanAddress} ct state new ct mark set ${HAIRPIN_MARK} dnat ip addr . port to tcp dport map @inbound`,
        ]
      : []),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...translate,
    // Hairpinned: the peer sees the sender's public endpoint, as from outside (RFC 4787 REQ-9). The
    // input interface is not known in postrouting: the hairpin's dnat marked the connection.
    ...(hairpin
      ? [
          ...(eimMap
            ? [
                `    oifname "lan" ct mark ${HAIRPIN_MARK} meta l4proto tcp snat ip to ${wanAddress} : ip saddr . tcp sport map @eim`,
              ]
            : []),
          `    oifname "lan" ct mark ${HAIRPIN_MARK} snat ip to ${wanAddress}`,
        ]
      : []),
    '  }',
    // After translation: the packet carries the public port, conntrack still knows the internal one.
    ...(needsInbound || inbound === 'hold6s'
      ? [
          '  chain mappings {',
          '    type filter hook postrouting priority srcnat + 10; policy accept;',
          ...(needsInbound
            ? [
                '    oifname "wan" ct direction original update @inbound { tcp sport : ct original ip saddr . ct original proto-src }',
              ]
            : []),
          ...(filtering === 'adf'
            ? ['    oifname "wan" ct direction original update @contacted { ip daddr . tcp sport }']
            : []),
          ...(inbound === 'hold6s'
            ? [
                `    oifname "wan" ${SYN} delete @held { ip daddr . tcp dport . tcp sport } delete @answer { ip daddr . tcp dport . tcp sport }`,
              ]
            : []),
          '  }',
        ]
      : []),
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    ...loss,
    ...noPickup,
    // Endpoint-independence: the public port an internal endpoint got is remembered from the first
    // answer to it (after de-translation the header holds the internal endpoint, conntrack the public).
    ...(eimMap
      ? ['    iifname "wan" ct direction reply update @eim { ip daddr . tcp dport : ct reply proto-dst }']
      : []),
    '    ct state established,related accept',
    '    iifname "lan" oifname "wan" accept',
    ...(dnatIn ? ['    iifname "wan" ct status dnat accept'] : []),
    ...(hairpin ? ['    iifname "lan" oifname "lan" ct status dnat accept'] : []),
    ...refuseRules(inbound),
    '  }',
    // Without this the router itself would answer a SYN addressed to its public address with RST
    // (nobody listens there), whatever the behaviour asked for.
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    ...loss,
    '    iifname "wan" ct state established,related accept',
    ...refuseRules(inbound),
    '    iifname "wan" meta l4proto tcp drop',
    '  }',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

/** One router in the plan: its namespace name and place. */
interface RouterPlan {
  name: string;
  behaviour: RouterBehaviour;
  wan: string;
  prefix: number;
  lan: string;
  /** The router in front of it (a home router behind a CGNAT), if any. */
  upstream?: string;
}

/**
 * Everything needed to build the lab, in order. Site g (hosts sharing a router count once) has its
 * router on 203.0.113.(g+1) and LAN 10.0.(g+1).0/24, hosts from .2 up; behind a CGNAT, the CGNAT
 * holds 203.0.113.(g+1) and the home router's WAN is 100.64.(g+1).2 (RFC 6598 shared address space).
 */
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

  // A router namespace with its WAN link (peer `peerName` in `peerNamespace`) and its LAN: a bridge,
  // or with `soleHost` a veth straight into that host's namespace (made already) as its eth0.
  const addRouter = (
    name: string,
    behaviour: RouterBehaviour,
    wan: { address: string; peerNamespace: string; peerName: string; gateway?: string },
    lanCidr: string,
    upstream?: string,
    soleHost?: string,
  ) => {
    const router = ns(name);
    addNamespace(router);
    link(router, 'wan', wan.peerNamespace, wan.peerName);
    address(router, 'wan', `${wan.address}/24`);
    up(router, 'wan');
    if (wan.gateway) commands.push(['ip', '-n', router, 'route', 'add', 'default', 'via', wan.gateway]);
    // The LAN is a bridge where several hosts sit behind the router. A sole host is wired straight to
    // it: a bridge on the way would cost every packet of a lab run two more traversals.
    if (soleHost) link(router, 'lan', soleHost, 'eth0');
    else commands.push(['ip', '-n', router, 'link', 'add', 'lan', 'type', 'bridge']);
    address(router, 'lan', lanCidr);
    up(router, 'lan');
    commands.push(['ip', 'netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    // The kernel limits ICMP errors per destination (about one a second after a burst): an `icmp`
    // router would then drop some SYNs silently instead of answering each one.
    commands.push(['ip', 'netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.icmp_ratelimit=0']);
    const gateway = lanCidr.split('/')[0] as string;
    rulesets[router] = routerRuleset(behaviour, gateway, wan.address);
    hosts.push({
      name,
      namespace: router,
      role: 'router',
      addresses: [wan.address, gateway],
      behaviour,
      ...(upstream ? { router: upstream } : {}),
    });
    return { namespace: router, gateway };
  };

  const sites: { router: RouterPlan; lanNamespace: string; gateway: string; hostCount: number }[] = [];
  const siteOf = new Map<string, (typeof sites)[number]>();
  for (const host of topology.hosts) {
    if (host.sharesRouterWith !== undefined) {
      const site = siteOf.get(host.sharesRouterWith);
      if (!site)
        throw new Error(`host '${host.name}' shares the router of unknown host '${host.sharesRouterWith}'`);
      if (formatBehaviour(site.router.behaviour) !== formatBehaviour(host.router))
        throw new Error(`host '${host.name}' shares ${site.router.name} but names another behaviour for it`);
      site.hostCount += 1;
      siteOf.set(host.name, site);
      const lan = ns(host.name);
      const hostAddress = `10.0.${site.router.prefix}.${site.hostCount + 1}`;
      addNamespace(lan);
      const port = `h${site.hostCount - 1}`;
      link(site.router.lan, port, lan, 'eth0');
      commands.push(['ip', '-n', site.router.lan, 'link', 'set', port, 'master', 'lan']);
      up(site.router.lan, port);
      address(lan, 'eth0', `${hostAddress}/24`);
      up(lan, 'eth0');
      commands.push(['ip', '-n', lan, 'route', 'add', 'default', 'via', site.gateway]);
      hosts.push({
        name: host.name,
        namespace: lan,
        role: 'host',
        addresses: [hostAddress],
        router: site.router.name,
      });
      continue;
    }
    const prefix = sites.length + 1;
    const port = `r${sites.length}`;
    const publicAddress = `203.0.113.${prefix}`;
    let wan: { address: string; peerNamespace: string; peerName: string; gateway?: string } = {
      address: publicAddress,
      peerNamespace: internet,
      peerName: port,
    };
    let upstream: string | undefined;
    if (host.cgnat) {
      upstream = cgnatName(host.name);
      const cgnat = addRouter(
        upstream,
        host.cgnat,
        { address: publicAddress, peerNamespace: internet, peerName: port },
        `100.64.${prefix}.1/24`,
      );
      // The home router's WAN joins the CGNAT's LAN bridge.
      wan = {
        address: `100.64.${prefix}.2`,
        peerNamespace: cgnat.namespace,
        peerName: 'h0',
        gateway: cgnat.gateway,
      };
      commands.push(
        ['ip', '-n', internet, 'link', 'set', port, 'master', 'br0'],
        ['ip', '-n', internet, 'link', 'set', port, 'up'],
      );
    }
    const name = routerName(host.name);
    const lan = ns(host.name);
    const sole = !topology.hosts.some((other) => other.sharesRouterWith === host.name);
    if (sole) addNamespace(lan);
    const home = addRouter(name, host.router, wan, `10.0.${prefix}.1/24`, upstream, sole ? lan : undefined);
    if (host.cgnat)
      commands.push(
        ['ip', '-n', ns(upstream as string), 'link', 'set', 'h0', 'master', 'lan'],
        ['ip', '-n', ns(upstream as string), 'link', 'set', 'h0', 'up'],
      );
    else
      commands.push(
        ['ip', '-n', internet, 'link', 'set', port, 'master', 'br0'],
        ['ip', '-n', internet, 'link', 'set', port, 'up'],
      );
    const site = {
      router: {
        name,
        behaviour: host.router,
        wan: wan.address,
        prefix,
        lan: home.namespace,
        ...(upstream ? { upstream } : {}),
      },
      lanNamespace: home.namespace,
      gateway: home.gateway,
      hostCount: 1,
    };
    sites.push(site);
    siteOf.set(host.name, site);
    const hostAddress = `10.0.${prefix}.2`;
    if (!sole) {
      addNamespace(lan);
      link(home.namespace, 'h0', lan, 'eth0');
      commands.push(['ip', '-n', home.namespace, 'link', 'set', 'h0', 'master', 'lan']);
      up(home.namespace, 'h0');
    }
    address(lan, 'eth0', `${hostAddress}/24`);
    up(lan, 'eth0');
    commands.push(['ip', '-n', lan, 'route', 'add', 'default', 'via', home.gateway]);
    hosts.push({ name: host.name, namespace: lan, role: 'host', addresses: [hostAddress], router: name });
  }
  return { id: labId, hosts, commands, rulesets };
}
