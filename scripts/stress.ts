/**
 * stress.ts: load-test TCP simultaneous open. Plans N pairs, opens each by simultaneous open (both
 * sides connect, nobody listens), exchanges and checks a payload, closes, and reports.
 * The command lives in lib/stress/stressCommand.ts; docs/stress.md explains the run, STRESS_HELP
 * (lib/stress/options.ts) its options, docs/guarantees.md what it promises.
 */
import { runMain } from '../lib/core/cli.ts';
import { STRESS_USAGE } from '../lib/stress/options.ts';
import { stressCommand } from '../lib/stress/stressCommand.ts';

runMain('stress', STRESS_USAGE, () => stressCommand(process.argv.slice(2)));
