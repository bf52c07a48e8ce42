/**
 * What an agent does around each coordinator's run beyond running sides: with a peer list, refuse a
 * plan that disagrees with it (lib/agent/peerList.ts); with --drop-early-rst, install the early-RST
 * table for the run's ports and peers, and remove it when the run ends (lib/agent/earlyRst.ts).
 */
import { EarlyRstTable, sweepStaleTables } from './earlyRst.ts';
import { disagreement, type PeerList } from './peerList.ts';
import type { CoordinatorMessage } from './types.ts';

export interface SessionHooks {
  /** Before the pool starts; a throw refuses the run with its message. */
  prepare(setup: Extract<CoordinatorMessage, { type: 'setup' }>): Promise<void>;
  /** After the run (finished, lost or stopped). Never throws. */
  release(): Promise<void>;
}

export function sessionHooks(
  options: { peers?: PeerList; dropEarlyRst: boolean },
  log: (line: string) => void,
): SessionHooks | undefined {
  if (!options.peers && !options.dropEarlyRst) return undefined;
  let table: EarlyRstTable | undefined;
  if (options.dropEarlyRst)
    for (const stale of sweepStaleTables()) log(`removed ${stale}, left by an agent that is gone`);
  return {
    async prepare(setup) {
      if (options.peers) {
        const why = await disagreement(options.peers, setup.links);
        if (why) throw new Error(`it disagrees with this agent's place: ${why}`);
      }
      if (options.dropEarlyRst) {
        table = new EarlyRstTable();
        table.install(
          setup.run.ports,
          setup.links.map((link) => link.peer),
        );
        log(
          `dropping early RSTs to ${setup.links.map((link) => link.peer).join(', ')} on ports ${setup.run.ports.first}-${setup.run.ports.last} (nft table inet ${table.table})`,
        );
      }
    },
    async release() {
      if (table) log(`removed nft table inet ${table.table}`);
      table?.remove();
      table = undefined;
    },
  };
}
