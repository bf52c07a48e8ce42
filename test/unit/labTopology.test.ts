import { describe, expect, it } from 'vitest';
import { parseTopology, planLab, routerRuleset } from '../../lib/lab/topology.ts';
import type { Topology } from '../../lib/lab/types.ts';

describe('lab topology (pure)', () => {
  it('creates every link inside lab namespaces, never in the host namespace', () => {
    const plan = planLab('t1', parseTopology('eim:apdf:drop,edm:eif:rst:5'));
    const linkAdds = plan.commands.filter((argv) => argv.includes('link') && argv.includes('add'));
    expect(linkAdds.length).toBeGreaterThan(0);
    for (const argv of linkAdds) expect(argv.slice(0, 3)).toEqual(['ip', '-n', argv[2]]);
    for (const argv of linkAdds) expect(argv[2]).toMatch(/^simopen-lab-t1-/);
    expect(plan.hosts.map((host) => host.name)).toEqual([
      'internet',
      'rv',
      'alice-nat',
      'alice',
      'bob-nat',
      'bob',
    ]);
  });

  it('wires a sole host to its router by a veth, and puts a LAN bridge where hosts share a router', () => {
    const bridges = (topology: string) =>
      planLab('t2', parseTopology(topology))
        .commands.filter((argv) => argv.join(' ').endsWith('link add lan type bridge'))
        .map((argv) => argv[2]);
    expect(bridges('eim,eim')).toEqual([]);
    const sole = planLab('t2', parseTopology('eim,eim')).commands.map((argv) => argv.join(' '));
    expect(sole).toContain(
      'ip -n simopen-lab-t2-alice-nat link add lan type veth peer name eth0 netns simopen-lab-t2-alice',
    );
    // The host's namespace exists before its router links into it.
    expect(sole).toContain('ip netns add simopen-lab-t2-alice');
    expect(sole.indexOf('ip netns add simopen-lab-t2-alice')).toBeLessThan(
      sole.findIndex((command) => command.includes('netns simopen-lab-t2-alice')),
    );
    expect(bridges('eim*2,eim')).toEqual(['simopen-lab-t2-alice-nat']);
  });

  it('turns each router behaviour into its nft rules', () => {
    const base: Topology['hosts'][number]['router'] = {
      mapping: 'eim',
      filtering: 'apdf',
      inbound: 'drop',
      lossPercent: 0,
    };
    const plain = routerRuleset(base, '10.0.1.2');
    expect(plain).toMatch(/oifname "wan" masquerade\n/);
    expect(plain).toMatch(/tcp flags & \(syn\|ack\) == syn drop/);
    expect(plain).not.toMatch(/numgen|@mapped|reject/);
    expect(routerRuleset({ ...base, mapping: 'edm' }, '10.0.1.2')).toMatch(/masquerade random/);
    expect(routerRuleset({ ...base, inbound: 'rst' }, '10.0.1.2')).toMatch(/== syn reject with tcp reset/);
    expect(routerRuleset({ ...base, filtering: 'eif' }, '10.0.1.2')).toMatch(
      /iifname "wan" ct state new dnat ip addr \. port to tcp dport map @inbound/,
    );
    expect(routerRuleset({ ...base, lossPercent: 2.5 }, '10.0.1.2')).toMatch(
      /numgen random mod 10000 < 250 drop/,
    );
    // A sequential counter reloaded at 5 goes on from the sixth port and wraps to the first.
    const sequential = routerRuleset(
      { ...base, mapping: 'edm', allocation: 'sequential' },
      '10.0.1.2',
      undefined,
      5,
    );
    expect(sequential).toMatch(/elements = \{ 0 : 20005, 1 : 20006,/);
    expect(sequential).toMatch(/4090 : 24095, 4091 : 20000,/);
    expect(() => parseTopology('eim:bogus')).toThrow(/unknown field 'bogus'/);
    expect(() => parseTopology('eim:150%')).toThrow(/over 100/);
  });

  it('refuses a router that names one field twice instead of taking the last', () => {
    expect(() => parseTopology('eim:edm:drop')).toThrow(
      /^router 'eim:edm:drop': mapping given twice \('eim' and 'edm'\)$/,
    );
    expect(() => parseTopology('eim:symmetric')).toThrow(/mapping given twice/);
    expect(() => parseTopology('eif:apdf')).toThrow(/filtering given twice/);
    expect(() => parseTopology('drop:rst')).toThrow(/inbound given twice/);
    expect(() => parseTopology('5%:5%')).toThrow(/loss given twice/);
    expect(() => parseTopology(',eim:drop:eim')).toThrow(/^router 'eim:drop:eim': mapping given twice/);
    // Any order, each field once, is still fine.
    expect(parseTopology('drop:5%:eif:edm').hosts[0]?.router).toEqual({
      mapping: 'edm',
      filtering: 'eif',
      inbound: 'drop',
      lossPercent: 5,
    });
  });
});
