/**
 * --close simultaneous in the sandbox: nft rules that hold each FIN until both sides of the
 * connection have sent theirs, so that the two FINs cross (docs/design.md explains why loopback
 * needs this and how the timers line up).
 */
import { DROP_EARLY_RST_RULE, SANDBOX_TABLE } from '../core/sandbox.ts';

/**
 * How long the cross-FINs rules hold a FIN at most. Its tries come at about 0, 0.3, 0.9, 2.1 and 4.5 s
 * (see below): the last one passes whatever happened, well within the default 10 s pair timeout.
 */
export const FIN_HOLD_LIMIT_MS = 3000;
/**
 * Minimum RTO on the sandbox's loopback routes while FINs are held. A held FIN is retried from the
 * probe timer, max(RTO, 200 ms) later: 300 ms puts that timer in the timer wheel's second level
 * (64 jiffies and more at HZ >= 250), whose 8-jiffy granularity makes two timers armed a jiffy apart
 * still expire together. At 200 ms (the first level, exact to the jiffy) more pairs miss the shared
 * expiry (docs/design.md).
 */
export const CROSS_FINS_RTO_MIN_MS = 300;
/** An IPv4 flow as the FIN sets key it (stress plans use 127.0.0.0/8 only), and its reverse. */
const FLOW = 'ip saddr . tcp sport . ip daddr . tcp dport';
const REVERSE_FLOW = 'ip daddr . tcp dport . ip saddr . tcp sport';

/**
 * DROP_EARLY_RST_RULESET plus rules that make the two FINs of a connection cross (stress --close
 * simultaneous). On loopback a FIN is delivered inside the shutdown() that sends it, so the peer is in
 * CLOSE_WAIT before it shuts down: an active/passive close, whatever the program does. FINs cross only
 * when both leave before either arrives, which on loopback means in one softirq run: two TCP timers
 * that expire together.
 *
 * A FIN dropped here stays unsent in its socket (FIN_WAIT_1), and the kernel tries it again from a
 * probe timer (max(RTO, 200 ms), then doubling). Every FIN is dropped until both directions of the
 * flow were tried on the same jiffy (fin_recent lives one jiffy): their timers were then armed on
 * that jiffy and expire together, so the next tries both pass (fin_go) in one timer run, and cross.
 * A FIN held for FIN_HOLD_LIMIT_MS without that happening passes (that close is then
 * active/passive, as --trace shows). Use with setLoopbackRtoMin(CROSS_FINS_RTO_MIN_MS).
 */
export function crossFinsRuleset(): string {
  const flowSet = (name: string, timeout: string) => `
  set ${name} {
    type ipv4_addr . inet_service . ipv4_addr . inet_service
    size 1048576
    flags dynamic, timeout
    timeout ${timeout}
  }`;
  return `
table ${SANDBOX_TABLE} {${flowSet('fin_recent', '1ms')}${flowSet('fin_go', '10s')}${flowSet('fin_seen', '10s')}${flowSet('fin_held', `${FIN_HOLD_LIMIT_MS}ms`)}
  chain out {
    type filter hook output priority 0;
    ${DROP_EARLY_RST_RULE}
    oifname "lo" tcp flags & (fin) == fin ${FLOW} @fin_go delete @fin_go { ${FLOW} } accept
    oifname "lo" tcp flags & (fin) == fin ${FLOW} @fin_seen ${FLOW} != @fin_held accept
    oifname "lo" tcp flags & (fin) == fin add @fin_seen { ${FLOW} } add @fin_held { ${FLOW} } continue
    oifname "lo" tcp flags & (fin) == fin update @fin_recent { ${FLOW} } ${REVERSE_FLOW} @fin_recent add @fin_go { ${FLOW} } add @fin_go { ${REVERSE_FLOW} } drop
    oifname "lo" tcp flags & (fin) == fin drop
  }
}
`;
}
