/**
 * stress.ts: load-test TCP simultaneous open. Plans N pairs, opens each by simultaneous open (both
 * sides connect, nobody listens), exchanges and checks a payload, closes, and reports.
 * The command lives in lib/stress/stressCommand.ts; docs/guarantees.md says what it promises.
 */
import { runMain } from '../lib/core/cli.ts';
import { STRESS_USAGE } from '../lib/stress/options.ts';
import { stressCommand } from '../lib/stress/stressCommand.ts';

runMain('stress', STRESS_USAGE, () => stressCommand(process.argv.slice(2)));
