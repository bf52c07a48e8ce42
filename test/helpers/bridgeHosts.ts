/**
 * Hosts as separate machines would be: one network namespace each, all on one bridge (in a namespace
 * of its own), plain addresses on one subnet, no NAT. Each host may get its own /etc/hosts (ip netns
 * exec mounts /etc/netns/<ns>/hosts over /etc/hosts for what it runs). Everything is named after this
 * test run and removed by teardown: the host's own network is never touched.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { TEST_RUN } from './runProcesses.ts';

export interface BridgeHost {
  namespace: string;
  address: string;
}

export interface BridgeNet {
  hosts: BridgeHost[];
  /** Writes this host's /etc/hosts (seen by what runs in it through `ip netns exec`). */
  hostsFile(host: BridgeHost, entries: Record<string, string>): void;
  /** `nft list ruleset` in the host's namespace. */
  ruleset(host: BridgeHost): string;
  teardown(): void;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The namespaces of this run's bridge networks start with this. */
export function bridgePrefix(tag: string): string {
  return `so11${tag}${TEST_RUN}`;
}

export function buildBridgeNet(tag: string, count: number): BridgeNet {
  const prefix = bridgePrefix(tag);
  const bridge = `${prefix}-br`;
  const hosts: BridgeHost[] = Array.from({ length: count }, (_, index) => ({
    namespace: `${prefix}-h${index}`,
    address: `10.77.0.${10 + index}`,
  }));
  const made: string[] = [];
  // /etc/netns is made for the hosts files if need be, and removed again if so (when no other run uses it).
  const netnsDirExisted = existsSync('/etc/netns');
  const teardown = () => {
    for (const namespace of made.reverse()) {
      try {
        ip(['netns', 'delete', namespace]);
      } catch {}
      rmSync(`/etc/netns/${namespace}`, { recursive: true, force: true });
    }
    made.length = 0;
    if (!netnsDirExisted)
      try {
        rmdirSync('/etc/netns');
      } catch {}
  };
  try {
    ip(['netns', 'add', bridge]);
    made.push(bridge);
    ip(['-n', bridge, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', bridge, 'link', 'set', 'br0', 'up']);
    hosts.forEach((host, index) => {
      ip(['netns', 'add', host.namespace]);
      made.push(host.namespace);
      ip([
        'link',
        'add',
        'eth0',
        'netns',
        host.namespace,
        'type',
        'veth',
        'peer',
        'name',
        `p${index}`,
        'netns',
        bridge,
      ]);
      ip(['-n', bridge, 'link', 'set', `p${index}`, 'master', 'br0', 'up']);
      ip(['-n', host.namespace, 'link', 'set', 'lo', 'up']);
      ip(['-n', host.namespace, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
      ip(['-n', host.namespace, 'link', 'set', 'eth0', 'up']);
    });
  } catch (error) {
    teardown();
    throw error;
  }
  return {
    hosts,
    hostsFile(host, entries) {
      mkdirSync(`/etc/netns/${host.namespace}`, { recursive: true });
      const lines = [
        '127.0.0.1 localhost',
        ...Object.entries(entries).map(([name, address]) => `${address} ${name}`),
      ];
      writeFileSync(`/etc/netns/${host.namespace}/hosts`, `${lines.join('\n')}\n`);
    },
    ruleset(host) {
      return execFileSync('ip', ['netns', 'exec', host.namespace, 'nft', 'list', 'ruleset'], {
        encoding: 'utf8',
      });
    },
    teardown,
  };
}

/** `nft list ruleset` of the machine itself (the test's own namespace). */
export function hostRuleset(): string {
  return execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
}
