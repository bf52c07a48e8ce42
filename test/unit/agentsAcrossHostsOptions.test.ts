import { describe, expect, it } from 'vitest';
import { earlyRstRuleset } from '../../lib/agent/earlyRst.ts';
import { parseAgentOptions } from '../../lib/agent/options.ts';
import { disagreement, parsePeerList } from '../../lib/agent/peerList.ts';
import type { LinkAssignment } from '../../lib/agent/types.ts';
import { parseAgentsRunOptions } from '../../lib/coordinator/agentsOptions.ts';
import { UsageError } from '../../lib/core/errors.ts';

const env = { SIMOPEN_AGENT_TOKEN: 't' };

describe('early-RST table', () => {
  it('drops only sequence-0 RSTs from the run ports to the peers’ run ports', () => {
    const text = earlyRstRuleset('simopen_agent_rst_42', { first: 30000, last: 30099 }, [
      '10.0.0.2',
      'fd00::2',
    ]);
    expect(text).toContain('table inet simopen_agent_rst_42 {');
    expect(text).toContain('type filter hook output priority 0;');
    expect(text).toContain(
      'ip daddr { 10.0.0.2 } tcp sport 30000-30099 tcp dport 30000-30099 tcp flags & (rst) == rst tcp sequence 0 drop',
    );
    expect(text).toContain('ip6 daddr { fd00::2 } tcp sport 30000-30099');
    // Nothing else: one rule per family, no policy.
    expect(text.match(/drop/g)).toHaveLength(2);
    expect(text).not.toContain('policy');
  });
});

describe('agent --peers and --index', () => {
  it('names the agent by its entry, its index from JOB_COMPLETION_INDEX', () => {
    const parsed = parseAgentOptions(['--listen', '0.0.0.0:7411'], {
      ...env,
      SIMOPEN_AGENT_PEERS: 'a-0.svc,a-1.svc,a-2.svc',
      JOB_COMPLETION_INDEX: '2',
    });
    if (parsed.help) throw new Error('help');
    expect(parsed.options.name).toBe('a-2');
    expect(parsed.options.peers).toEqual({ names: ['a-0.svc', 'a-1.svc', 'a-2.svc'], index: 2 });
  });

  it('refuses an index outside the list, a missing index, a name given twice', () => {
    expect(() => parsePeerList('a,b', '2', '--index')).toThrow(/index 2, but --peers names 2 agents/);
    expect(() => parsePeerList('a,b', undefined, '--index or JOB_COMPLETION_INDEX')).toThrow(
      /JOB_COMPLETION_INDEX/,
    );
    expect(() => parsePeerList('a.x,a.y', '0', '--index')).toThrow(/'a' comes twice/);
    expect(() => parsePeerList('a,b', 'one', '--index')).toThrow(UsageError);
    expect(() => parseAgentOptions(['--listen', '0.0.0.0:1', '--index', '1'], env)).toThrow(
      /--index goes with --peers/,
    );
  });

  const link = (peerName: string, peer: string, role: 'a' | 'b', index = 0): LinkAssignment => ({
    link: index,
    role,
    local: '10.0.0.1',
    peer,
    peerName,
    portOffset: 0,
  });

  it('accepts the plan it was told of, refuses another, naming the difference', async () => {
    const peers = { names: ['10.0.0.1', '10.0.0.2', '10.0.0.3'], index: 1 };
    expect(
      await disagreement(peers, [link('10.0.0.1', '10.0.0.1', 'b'), link('10.0.0.3', '10.0.0.3', 'a', 1)]),
    ).toBe(undefined);
    expect(
      await disagreement(peers, [link('10.0.0.1', '10.0.0.1', 'a'), link('10.0.0.3', '10.0.0.3', 'a', 1)]),
    ).toMatch(/^index: 10\.0\.0\.2 is agent 1 of .* lists 10\.0\.0\.1 \(agent 0 here\) after it/);
    expect(await disagreement(peers, [link('10.0.0.1', '10.0.0.1', 'b')])).toMatch(
      /the coordinator's run leaves out 10\.0\.0\.3/,
    );
    expect(await disagreement(peers, [link('10.0.0.9', '10.0.0.9', 'b')])).toMatch(
      /not among its other peers/,
    );
  });

  it('a peer name that resolves elsewhere here is refused', async () => {
    const peers = { names: ['localhost', 'self'], index: 1 };
    expect(await disagreement(peers, [link('localhost', '127.0.0.9', 'b')])).toMatch(
      /peer localhost resolves to 127\.0\.0\.1 here, the coordinator sends self to 127\.0\.0\.9/,
    );
  });
});

describe('stress.ts --agents', () => {
  it('names agents by their first DNS label, or their address; defaults ports apart from the control port', () => {
    const parsed = parseAgentsRunOptions(['--agents', 'a-0.svc:7411,10.0.0.2:7411', '--pairs', '10'], env, 2);
    if (parsed.help) throw new Error('help');
    expect(parsed.agents).toEqual([
      { host: 'a-0.svc', port: 7411, name: 'a-0' },
      { host: '10.0.0.2', port: 7411, name: undefined },
    ]);
    expect(parsed.options.ports).toEqual({ first: 21000, last: 29999 });
    expect(parsed.token).toBe('t');
  });

  it('bad input is a one-line usage error', () => {
    expect(() => parseAgentsRunOptions(['--agents', 'a:1'], env, 2)).toThrow(/at least two agents/);
    expect(() => parseAgentsRunOptions(['--agents', 'a:1,a:1'], env, 2)).toThrow(/comes twice/);
    expect(() => parseAgentsRunOptions(['--agents', 'a:1,b:1'], {}, 2)).toThrow(/token/);
    expect(() => parseAgentsRunOptions(['--agents', 'a:22000,b:1'], env, 2)).toThrow(
      /holds the control port/,
    );
    expect(() => parseAgentsRunOptions(['--agents', 'a:1,b:1', '--mode', 'race'], env, 2)).toThrow(
      /--mode does not go with --agents/,
    );
    expect(() => parseAgentsRunOptions(['--agents', 'a:x,b:1'], env, 2)).toThrow(UsageError);
  });
});
