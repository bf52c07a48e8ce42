/**
 * What the process that runs the pool sets up before the first pair: inside the sandbox its network
 * (lo up, the nft rules, the minimum RTO), and the sockets. Bare TCP handles are used only if their
 * self-test (lib/core/rawTcpSelfTest.ts) passes here, once, before the pool starts; otherwise the run
 * uses net.Socket and says why (stderr, and socketsReason in the report).
 */
import { setupHeldLink } from '../core/heldLink.ts';
import { selfTestRawTcp } from '../core/rawTcpSelfTest.ts';
import { applyNft, clearSandboxRules, setLoopbackRtoMin, setupSandboxNetwork } from '../core/sandbox.ts';
import type { SandboxNetwork } from './chooseMode.ts';
import type { StressOptions } from './types.ts';

export interface PreparedRun {
  /** The options to run with: sockets is 'net' after a failed self-test. */
  options: StressOptions;
  /** Why net.Socket is used although bare handles were asked for; undefined otherwise. */
  socketsReason?: string;
}

export async function prepareRun(
  options: StressOptions,
  network: SandboxNetwork | undefined,
  warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<PreparedRun> {
  // lo first, the rules after the self-test: the FIN-holding rules of --close simultaneous would
  // hold the self-test's FINs for seconds. An earlier run of this process may have left its rules.
  if (network) {
    setupSandboxNetwork('');
    clearSandboxRules();
  }
  const socketsReason =
    options.mode === 'sandbox' && options.sockets === 'handle' ? await selfTestRawTcp() : undefined;
  if (network) {
    applyNft(network.ruleset);
    if (network.rtoMinMs !== undefined) setLoopbackRtoMin(network.rtoMinMs);
    if (network.heldLink) setupHeldLink();
  }
  if (!socketsReason) return { options };
  warn(`stress: ${socketsReason}; using net.Socket`);
  return { options: { ...options, sockets: 'net' }, socketsReason };
}
