/**
 * The human report of a distributed run: a local run's report (lib/stress/printResult.ts), then the
 * agents and links, then in the lab the routers' conntrack figures. Pure: returns the text.
 */
import { printResult } from '../stress/printResult.ts';
import { formatBreakdown } from './breakdown.ts';
import { statsDelta } from './conntrack.ts';
import type { DistributedResult, LabReport, RouterReport } from './types.ts';

function n(value: number): string {
  return value.toLocaleString('en-US');
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${n(value)}`;
}

/** The order a TCP connection goes through its states, for the states-entered line. */
const STATE_ORDER = [
  'NONE',
  'SYN_SENT',
  'SYN_SENT2',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'LISTEN',
];

function orderedStates(states: Record<string, number>): string {
  const entries = Object.entries(states).sort(
    ([x], [y]) => ((STATE_ORDER.indexOf(x) + 100) % 100) - ((STATE_ORDER.indexOf(y) + 100) % 100),
  );
  return entries.length ? entries.map(([state, count]) => `${state} ${n(count)}`).join(', ') : 'none seen';
}

function routerLines(router: RouterReport, width: number): string[] {
  const indent = `    ${' '.repeat(width)}  `;
  const delta = statsDelta(router.before, router.after);
  const lan = router.newFromLan;
  const preserved = lan ? ` (${((router.portPreserved / lan) * 100).toFixed(2)}%)` : '';
  const conntrackS = `${indent}conntrack -S   found ${signed(delta.found)}  invalid ${signed(delta.invalid)}  insert ${signed(delta.insert)}  insert_failed ${signed(delta.insert_failed)}  drop ${signed(delta.drop)}  early_drop ${signed(delta.early_drop)}  (during the run)`;
  const entries = `    ${router.name.padEnd(width)}  ${router.behaviour}  entries: peak ${n(router.peakEntries)} of nf_conntrack_max ${n(router.maxEntries)}; new ${n(router.newFromLan)} from its host, ${n(router.newFromWan)} from the WAN`;
  const nat = `${indent}NAT            port preserved ${n(router.portPreserved)}${preserved}, changed ${n(router.portChanged)}${router.behaviour.startsWith('edm') ? ' (random by design)' : ' (port clashes)'}`;
  if (!router.eventsWatched)
    return [entries, nat, `${indent}states         not watched (--conntrack-events off)`, conntrackS];
  const watched =
    router.sampleEvery > 1
      ? `of ${n(router.entriesWatched)} entries watched: 1 in ${router.sampleEvery}, chosen in the kernel; exact for those`
      : `of every entry, ${n(router.entriesWatched)}`;
  return [
    entries,
    nat,
    `${indent}states entered ${orderedStates(router.statesSeen)} (${watched}${router.eventsLost ? '; events LOST: lower bounds' : ''})`,
    conntrackS,
  ];
}

export function formatLab(lab: LabReport): string[] {
  const first = lab.routers[0];
  const timeouts = first
    ? Object.entries(first.timeouts)
        .map(([name, seconds]) => `${name} ${seconds} s`)
        .join(', ')
    : '';
  const width = Math.max(5, ...lab.routers.map((router) => router.name.length));
  return [
    `  lab            ${lab.id} (${lab.topology}), kernel ${lab.kernel}`,
    `  mapping        ${lab.mapping}`,
    `  routers        conntrack tcp timeouts ${timeouts || 'n/a'}`,
    ...lab.routers.flatMap((router) => routerLines(router, width)),
    ...lab.problems.map((problem) => `  PROBLEM        ${problem}`),
  ];
}

export function printDistributed(result: DistributedResult): string {
  const lines = [
    printResult(result).trimEnd(),
    `  coordinator    CPU ${((result.coordinatorCpu.userMs + result.coordinatorCpu.systemMs) / 1000).toFixed(2)} s (joining, logging, control)`,
    ...formatBreakdown(result.agents, result.links),
    ...(result.lab ? formatLab(result.lab) : []),
  ];
  return `${lines.join('\n')}\n`;
}
