/**
 * stress.ts: load-test TCP simultaneous open. Plans N pairs, opens each by simultaneous open (both
 * sides connect, nobody listens), exchanges and checks a payload, closes, and reports.
 * The command lives in lib/stress/stressCommand.ts; docs/stress.md explains the run, STRESS_HELP
 * (lib/stress/options.ts) its options, docs/guarantees.md what it promises. `stress.ts --lab` runs
 * every pair across NAT routers through agents (lib/coordinator/labCommand.ts), and `stress.ts agent`
 * is one of those agents (lib/agent/agentCommand.ts); `stress.ts --agents` runs across agents already
 * running on other machines or pods (lib/coordinator/agentsCommand.ts); docs/distributed.md.
 */
import os from 'node:os';
import { agentCommand } from '../lib/agent/agentCommand.ts';
import { AGENT_USAGE } from '../lib/agent/options.ts';
import { agentsRunCommand } from '../lib/coordinator/agentsCommand.ts';
import { AGENTS_RUN_USAGE, isAgentsRun } from '../lib/coordinator/agentsOptions.ts';
import { labRunCommand } from '../lib/coordinator/labCommand.ts';
import { isLabRun } from '../lib/coordinator/labOptions.ts';
import { runMain } from '../lib/core/cli.ts';
import { STRESS_USAGE } from '../lib/stress/options.ts';
import { stressCommand } from '../lib/stress/stressCommand.ts';

const args = process.argv.slice(2);
if (args[0] === 'agent') runMain('stress agent', AGENT_USAGE, () => agentCommand(args.slice(1)));
else if (isLabRun(args)) runMain('stress', STRESS_USAGE, () => labRunCommand(args));
else if (isAgentsRun(args))
  runMain('stress', AGENTS_RUN_USAGE, () => agentsRunCommand(args, os.availableParallelism()));
else runMain('stress', STRESS_USAGE, () => stressCommand(args));
