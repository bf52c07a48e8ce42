/**
 * `stress.ts agent --drop-early-rst`: between real hosts, a SYN that arrives before the peer's own
 * connect() meets no socket and its kernel answers with a RST (sequence 0), which kills the pair.
 * The agent drops those RSTs leaving it in an nft table of its own, scoped to the run's ports and
 * its peers' addresses: the host's other rules and other traffic are untouched. The table is removed
 * when the run ends, when the agent stops (signals included) and when the process exits; a table
 * left by an agent killed with SIGKILL is removed by the next agent that starts on the host.
 */
import { execFileSync } from 'node:child_process';
import { isIP } from 'node:net';
import { isAlive } from '../core/childProcess.ts';
import { applyNft } from '../core/sandbox.ts';
import type { PortRange } from '../core/types.ts';

/** The tables' prefix; the agent's pid follows. */
export const EARLY_RST_TABLE_PREFIX = 'simopen_agent_rst_';

export function earlyRstTableName(pid = process.pid): string {
  return `${EARLY_RST_TABLE_PREFIX}${pid}`;
}

/** The table: RSTs with sequence 0 from the run's ports to the peers' run ports, and nothing else. */
export function earlyRstRuleset(table: string, ports: PortRange, peers: readonly string[]): string {
  const v4 = peers.filter((peer) => isIP(peer) === 4);
  const v6 = peers.filter((peer) => isIP(peer) === 6);
  const range = ports.first === ports.last ? `${ports.first}` : `${ports.first}-${ports.last}`;
  const rule = (family: 'ip' | 'ip6', addresses: string[]) =>
    `    ${family} daddr { ${addresses.join(', ')} } tcp sport ${range} tcp dport ${range} tcp flags & (rst) == rst tcp sequence 0 drop`;
  return `table inet ${table} {
  chain out {
    type filter hook output priority 0;
${[...(v4.length ? [rule('ip', v4)] : []), ...(v6.length ? [rule('ip6', v6)] : [])].join('\n')}
  }
}
`;
}

function deleteTable(table: string): void {
  applyNft(`table inet ${table}\ndelete table inet ${table}\n`);
}

/** Tables of agents that are gone (killed with SIGKILL): removed. */
export function sweepStaleTables(): string[] {
  let listing = '';
  try {
    listing = execFileSync('nft', ['list', 'tables', 'inet'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const match of listing.matchAll(new RegExp(`table inet (${EARLY_RST_TABLE_PREFIX}(\\d+))`, 'g'))) {
    const [, table, pid] = match;
    if (!table || Number(pid) === process.pid || isAlive(Number(pid))) continue;
    try {
      deleteTable(table);
      removed.push(table);
    } catch {}
  }
  return removed;
}

/** The agent's early-RST table: installed for a run, removed after it and on every exit. */
export class EarlyRstTable {
  private installed = false;
  private readonly onExit = () => this.remove();

  constructor(readonly table = earlyRstTableName()) {}

  install(ports: PortRange, peers: readonly string[]): void {
    if (!peers.length) return;
    this.remove();
    process.on('exit', this.onExit);
    this.installed = true;
    try {
      applyNft(earlyRstRuleset(this.table, ports, [...new Set(peers)]));
    } catch (error) {
      this.remove();
      throw error;
    }
  }

  /** Idempotent; synchronous, so it also runs in an 'exit' handler. */
  remove(): void {
    if (!this.installed) return;
    this.installed = false;
    process.off('exit', this.onExit);
    try {
      deleteTable(this.table);
    } catch {}
  }
}
