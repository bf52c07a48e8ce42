/**
 * Each router behaviour is what it says, seen from outside the router: probes from other lab hosts,
 * the errors their connects get, conntrack's table in the router, and matrix rows whose outcome is
 * certain. Needs root with ip, nft and conntrack; skips (saying why) only when those are missing
 * and CI is unset. Every lab is this run's (ids from its pid) and is removed after each test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { probeLab } from '../../lib/lab/buildLab.ts';
import { createLab, type Lab } from '../../lib/lab/createLab.ts';
import { matrixRows, rowText } from '../../lib/lab/matrixRows.ts';
import { runNatMatrix } from '../../lib/lab/runMatrix.ts';
import { parseBehaviour } from '../../lib/lab/topology.ts';
import { expectNothingLeftThenClean, ownLab } from '../helpers/labScope.ts';

const facility = probeLab();
const isRoot = process.getuid?.() === 0;
const skip = !(facility.ok && isRoot) && !process.env.CI;
if (skip) process.stderr.write(`NAT behaviour tests skipped: ${isRoot ? facility.reason : 'not root'}\n`);

const RV = '203.0.113.10';
let made = 0;
const labs: Lab[] = [];

async function lab(topology: string): Promise<Lab> {
  made += 1;
  const created = await createLab({ topology, id: ownLab(`n${process.pid}${made}`.slice(-12)) });
  labs.push(created);
  return created;
}

/** A tcpProbe.ts listener in a host (with a kept-open mapping connection first, if given). */
async function listen(on: Lab, host: string, port: number, mapVia?: string) {
  const child = on.spawnScript(host, 'test/fixtures/tcpProbe.ts', [
    'listen',
    String(port),
    ...(mapVia ? mapVia.split(':') : []),
  ]);
  await child.waitForLine(/^listening$/, 60_000);
  return child;
}

/** tcpProbe.ts connect in a host: one JSON result per connection. */
async function connect(on: Lab, host: string, target: string, from = 0, count = 1, timeoutMs = 3000) {
  const [address, port] = target.split(':') as [string, string];
  const result = await on.exec(host, [
    'npx',
    'tsx',
    'test/fixtures/tcpProbe.ts',
    'connect',
    address,
    port,
    String(from),
    String(count),
    String(timeoutMs),
  ]);
  return result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { ok: boolean; line?: string; code?: string });
}

const seenPort = (result: { line?: string }) => Number(/:(\d+)$/.exec(result.line ?? '')?.[1]);

describe.skipIf(skip)('NAT router behaviours, from outside', () => {
  afterEach(async () => {
    await Promise.all(labs.splice(0).map((each) => each.close()));
    expectNothingLeftThenClean();
  });

  it('sequential allocation: consecutive connections get consecutive public ports; eim keeps one port per internal endpoint, edm a new one per destination', async () => {
    const net = await lab('edm:sequential,eim:sequential');
    await listen(net, 'rv', 7000);
    await listen(net, 'rv', 7001);
    const edm = [
      ...(await connect(net, 'alice', `${RV}:7000`, 5000, 3)),
      ...(await connect(net, 'alice', `${RV}:7001`, 5000, 1)),
    ];
    expect(edm.map(seenPort)).toEqual([20000, 20001, 20002, 20003]);
    const eim = [
      ...(await connect(net, 'bob', `${RV}:7000`, 6000, 2)),
      ...(await connect(net, 'bob', `${RV}:7001`, 6000, 2)),
    ];
    expect(eim.map(seenPort)).toEqual([20000, 20001, 20000, 20001]);
  });

  it('adf lets a new connection in from any port of an address the mapping sent to, and no other address', async () => {
    const net = await lab('eim:adf,eim');
    await listen(net, 'rv', 7000);
    // alice's port 5000 gets a mapping towards rv (kept open), and listens.
    await listen(net, 'alice', 5000, `${RV}:7000`);
    const fromRv = await connect(net, 'rv', '203.0.113.1:5000', 7100);
    expect(fromRv[0]).toMatchObject({ ok: true, line: expect.stringMatching(/^seen 203\.0\.113\.10:7100$/) });
    const fromBob = await connect(net, 'bob', '203.0.113.1:5000', 6100, 1, 1500);
    expect(fromBob[0]).toEqual({ ok: false, code: 'ETIMEDOUT' });
  });

  it('icmp answers an unsolicited SYN with ICMP administratively prohibited: the connect fails with EHOSTUNREACH', async () => {
    const net = await lab('eim:icmp,eim');
    const [result] = await connect(net, 'bob', '203.0.113.1:5555');
    expect(result).toEqual({ ok: false, code: 'EHOSTUNREACH' });
    const rst = await lab('eim:rst,eim');
    expect((await connect(rst, 'bob', '203.0.113.1:5555'))[0]).toEqual({ ok: false, code: 'ECONNREFUSED' });
  });

  it('hold6s: a late outbound SYN of the same flow completes it; an unanswered one is answered (port unreachable) after the hold', async () => {
    const net = await lab('eim:hold6s,eim');
    const dial = (host: string, local: string, remote: string) =>
      net.spawnScript(host, 'test/fixtures/dialOnce.ts', ['0.0.0.0', local, ...remote.split(':')]);
    // bob's SYN is held at alice's router; alice dials 2 s later, within the hold.
    const bob = dial('bob', '6000', '203.0.113.1:5000');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const alice = dial('alice', '5000', '203.0.113.2:6000');
    const [bobLine, aliceLine] = await Promise.all([bob.waitForLine(/^\{/), alice.waitForLine(/^\{/)]);
    expect(JSON.parse(bobLine)).toMatchObject({
      attempts: 1,
      remoteAddress: '203.0.113.1',
      remotePort: 5000,
    });
    expect(JSON.parse(aliceLine)).toMatchObject({ remoteAddress: '203.0.113.2', remotePort: 6000 });
    // Nobody behind alice's router dials back: the retransmission after 6 s is answered.
    const [late] = await connect(net, 'bob', '203.0.113.1:5001', 6001, 1, 12_000);
    expect(late).toEqual({ ok: false, code: 'ECONNREFUSED' });
  });

  it("hairpin: hosts behind one NAT reach each other through its public address and see the sender's public endpoint; without it the router refuses", async () => {
    const net = await lab('eim:hairpin*2');
    await listen(net, 'rv', 7000);
    await listen(net, 'bob', 6000, `${RV}:7000`);
    const [result] = await connect(net, 'alice', '203.0.113.1:6000', 5000);
    expect(result).toMatchObject({ ok: true, line: 'seen 203.0.113.1:5000' });
    const plain = await lab('eim*2');
    await listen(plain, 'rv', 7000);
    await listen(plain, 'bob', 6000, `${RV}:7000`);
    expect((await connect(plain, 'alice', '203.0.113.1:6000', 5000))[0]).toEqual({
      ok: false,
      code: 'ECONNREFUSED',
    });
  });

  it("double NAT: the world sees the CGNAT's public address; the home router sits on RFC 6598 space behind it", async () => {
    const net = await lab('edm:sequential/eim,eim');
    expect(net.host('alice-nat')).toMatchObject({
      addresses: ['100.64.1.2', '10.0.1.1'],
      router: 'alice-cgnat',
    });
    await listen(net, 'rv', 7000);
    const [result] = await connect(net, 'alice', `${RV}:7000`, 5000);
    expect(result).toMatchObject({ ok: true, line: 'seen 203.0.113.1:20000' });
  });

  it('STUN: a client we did not write learns the public endpoint each NAT type gives it, as conntrack in the router shows it', async () => {
    const net = await lab('eim,eim');
    const server = net.spawnScript('rv', 'scripts/rendezvous.ts', ['--listen', `${RV}:3478`]);
    await server.waitForLine(/ listening /, 60_000);
    for (const [router, localPort] of [
      ['eim', 5000],
      ['eim:sequential', 5001],
      ['edm', 5002],
    ] as const) {
      net.reconfigureRouter('alice', parseBehaviour(router));
      const run = await net.exec('alice', [
        'npx',
        'tsx',
        'test/fixtures/stunRequest.ts',
        RV,
        '3478',
        String(localPort),
      ]);
      const answer = JSON.parse(run.stdout) as {
        mapped: { address: string; port: number };
        fingerprint: boolean;
        sameTransaction: boolean;
      };
      const table = await net.exec('alice-nat', [
        'conntrack',
        '-L',
        '-p',
        'tcp',
        '--orig-port-src',
        String(localPort),
      ]);
      const publicPort = Number(/dport=3478 .*dport=(\d+)/.exec(table.stdout)?.[1]);
      expect(answer).toMatchObject({
        mapped: { address: '203.0.113.1', port: publicPort },
        fingerprint: true,
        sameTransaction: true,
      });
      if (router === 'eim') expect(publicPort).toBe(localPort);
      if (router === 'eim:sequential') expect(publicPort).toBe(20000);
    }
    expect(server.output.join('\n')).toMatch(/ stun from=203\.0\.113\.1:\d+ request=binding/);
  });

  it('matrix rows whose outcome is certain: prediction turns sequential rows green; hold6s succeeds where rst fails and answers after 6 s; idle mappings need keepalives', async () => {
    const wanted = [
      'eim:apdf:drop eim:apdf:rst skew two-nats',
      'eim:apdf:drop edm:sequential:apdf:drop sync two-nats',
      'eim:apdf:drop edm:sequential:apdf:drop sync two-nats predict=3',
      'eim:apdf:drop eim:apdf:icmp skew two-nats',
      'eim:apdf:drop eim:apdf:hold6s skew two-nats',
      'eim:apdf:drop eim:apdf:hold6s late two-nats',
      'eim:apdf:drop:idle=3s eim:apdf:drop:idle=3s sync two-nats quiet=5s',
      'eim:apdf:drop:idle=3s eim:apdf:drop:idle=3s sync two-nats quiet=5s keepalive=1s',
    ];
    const rows = matrixRows().filter((row) => wanted.includes(rowText(row)));
    expect(rows.map(rowText)).toEqual(wanted);
    const labId = ownLab(`q${process.pid}`.slice(-12));
    const summaries = await runNatMatrix({ labId, rows, punches: 2, deadlineMs: 3000, retryIntervalMs: 0 });
    expect(summaries.map((summary) => `${summary.successes}/${summary.punches}`)).toEqual([
      '0/2',
      '0/2',
      '2/2',
      '0/2',
      '2/2',
      '0/2',
      '0/2',
      '2/2',
    ]);
    expect(summaries.every((summary) => summary.matches)).toBe(true);
    // Prediction's cost: the eim side dials 3 predicted ports, the sequential side 1.
    expect(summaries[2]?.socketsPerPunch).toBe(4);
  });
});
