/**
 * The conntrack event counter (lib/coordinator/conntrack.ts EVENT_COUNT_AWK), run by awk as a lab run
 * runs it, on `conntrack -E -o id` lines of the shapes the kernel prints: states entered once per
 * entry, an event without a timeout, new entries seen.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EVENT_COUNT_AWK, parseEventSummary } from '../../lib/coordinator/conntrack.ts';

const EVENTS = [
  '[NEW] tcp      6 120 SYN_SENT src=10.0.1.2 dst=203.0.113.2 sport=1024 dport=1024 [UNREPLIED] src=203.0.113.2 dst=203.0.113.1 sport=1024 dport=1024 id=11',
  '[UPDATE] tcp      6 60 SYN_RECV src=10.0.1.2 dst=203.0.113.2 sport=1024 dport=1024 src=203.0.113.2 dst=203.0.113.1 sport=1024 dport=1024 id=11',
  '[UPDATE] tcp      6 60 SYN_RECV src=10.0.1.2 dst=203.0.113.2 sport=1024 dport=1024 src=203.0.113.2 dst=203.0.113.1 sport=1024 dport=1024 [ASSURED] id=11',
  '[UPDATE] tcp      6 432000 ESTABLISHED src=10.0.1.2 dst=203.0.113.2 sport=1024 dport=1024 src=203.0.113.2 dst=203.0.113.1 sport=1024 dport=1024 [ASSURED] id=11',
  '[UPDATE] tcp      6 CLOSE src=10.0.1.2 dst=203.0.113.2 sport=1024 dport=1024 src=203.0.113.2 dst=203.0.113.1 sport=1024 dport=1024 [ASSURED] id=11',
  '[NEW] tcp      6 120 SYN_SENT src=10.0.1.2 dst=203.0.113.2 sport=1025 dport=1025 [UNREPLIED] src=203.0.113.2 dst=203.0.113.1 sport=1025 dport=40001 id=12',
  '[NEW] tcp      6 120 SYN_SENT src=203.0.113.9 dst=203.0.113.1 sport=5 dport=1024 [UNREPLIED] src=10.0.1.2 dst=203.0.113.9 sport=1024 dport=5 id=13',
  // The peer's SYN crossed this entry before its NEW event was built: it entered SYN_SENT all the same.
  '[NEW] tcp      6 120 SYN_SENT2 src=10.0.1.2 dst=203.0.113.2 sport=1026 dport=1026 [UNREPLIED] src=203.0.113.2 dst=203.0.113.1 sport=1026 dport=1026 id=14',
  '[UPDATE] tcp      6 60 SYN_RECV src=10.0.1.2 dst=203.0.113.2 sport=1026 dport=1026 src=203.0.113.2 dst=203.0.113.1 sport=1026 dport=1026 id=14',
].join('\n');

describe('conntrack event counter', () => {
  it('counts states entered per entry and the new entries', () => {
    const run = spawnSync('awk', [EVENT_COUNT_AWK], {
      input: `${EVENTS}\n`,
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    const counts = parseEventSummary(run.stdout, '');
    expect(counts.statesSeen).toEqual({ SYN_SENT: 4, SYN_SENT2: 1, SYN_RECV: 2, ESTABLISHED: 1, CLOSE: 1 });
    expect(counts.newEventsSeen).toBe(4);
  });
});
