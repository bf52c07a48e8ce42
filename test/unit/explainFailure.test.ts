import { describe, expect, it } from 'vitest';
import { DialError } from '../../lib/peer/dialSimultaneous.ts';
import { explainFailure } from '../../lib/rendezvous/client.ts';
import type { PeerInfo } from '../../lib/rendezvous/types.ts';

describe('explaining a failed punch', () => {
  const side = (mapping: PeerInfo['mapping'], name = ''): PeerInfo => ({
    name,
    endpoint: { host: '203.0.113.1', port: 5000 },
    mapping,
    rttMs: 1,
  });
  const timeout = (errors: Record<string, number>) => new DialError('no peer', 'EDEADLINE', 3, errors, 3000);

  it('blames a symmetric NAT first, then refusals, then silence', () => {
    const symmetric = explainFailure(
      side('endpoint-independent'),
      side('endpoint-dependent', 'bob'),
      timeout({}),
    );
    expect(symmetric.code).toBe('ESYMMETRIC');
    expect(symmetric.text).toMatch(/^the peer's \(bob's\) NAT is a symmetric NAT .*cannot be predicted$/);
    const both = explainFailure(side('endpoint-dependent'), side('endpoint-dependent'), timeout({}));
    expect(both.text).toMatch(/^our NAT and the peer's NAT are symmetric NATs/);
    const refused = explainFailure(
      side('endpoint-independent'),
      side('unknown'),
      timeout({ ECONNREFUSED: 40 }),
    );
    expect(refused).toMatchObject({ code: 'EREFUSED' });
    expect(refused.text).toMatch(/never crossed in time/);
    expect(explainFailure(side('unknown'), side('unknown'), timeout({})).code).toBe('ENOPATH');
    const local = explainFailure(
      side('endpoint-independent'),
      side('endpoint-independent'),
      new DialError('in use', 'EADDRINUSE', 1, {}, 1),
    );
    expect(local.text).toMatch(/the dial itself failed \(EADDRINUSE\)/);
  });
});
