/**
 * A stress scenario of its own: pairs with a 16 KiB payload each way, closed by reset, and a check of
 * its own on the result (every pair established, every byte verified, every pair closed by a RST).
 *
 *   npx tsx examples/custom-stress.ts [PAIRS]
 *
 * runStressPlan runs the pairs in the sandbox, a private network namespace: it executes this script
 * again in there, so what comes before the call runs twice and what comes after runs in the copy.
 */
import { printResult, runStressPlan } from 'simopen/stress';

const pairs = Number(process.argv[2] ?? 2000);
const payload = 16 * 1024;

const result = await runStressPlan({ pairs, payload, close: 'reset' });
process.stdout.write(printResult(result));

const { established } = result.pairs;
const problems: string[] = [];
if (established !== pairs) problems.push(`${pairs - established} of ${pairs} pairs not established`);
if (result.bytesVerified !== established * 2 * payload)
  problems.push(`${result.bytesVerified} bytes verified, expected ${established * 2 * payload}`);
if (result.closeOutcomes.rst !== established)
  problems.push(`${result.closeOutcomes.rst ?? 0} of ${established} pairs closed by RST`);
if (problems.length) {
  process.stderr.write(`check: FAILED: ${problems.join('; ')}\n`);
  process.exitCode = 1;
} else {
  process.stdout.write(`check: ok: ${pairs} pairs, ${2 * payload} bytes verified each, all closed by RST\n`);
}
