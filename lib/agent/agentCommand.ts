/**
 * `stress.ts agent`, whole: options, the agent, its signals. scripts/stress.ts only calls agentCommand.
 */
import { INTERRUPT_SIGNALS } from '../core/childProcess.ts';
import { formatEndpoint } from '../core/endpoint.ts';
import { EXIT, ExitError } from '../core/errors.ts';
import { startAgent } from './agentServer.ts';
import { AGENT_HELP, parseAgentOptions } from './options.ts';
import { sessionHooks } from './sessionHooks.ts';

export async function agentCommand(args: string[]): Promise<number> {
  const parsed = parseAgentOptions(args);
  if (parsed.help) {
    process.stdout.write(`${AGENT_HELP}\n`);
    return EXIT.ok;
  }
  const { options } = parsed;
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try {
    const log = (line: string) => process.stderr.write(`stress agent ${options.name}: ${line}\n`);
    agent = await startAgent(
      { ...options, hooks: sessionHooks({ ...options, dropEarlyRst: options.dropEarlyRst ?? false }, log) },
      log,
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ExitError(`agent ${options.name} cannot start: ${reason}`, EXIT.failure);
  }
  process.stdout.write(`stress agent ${options.name}: listening on ${formatEndpoint(agent.address)}\n`);
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`stress agent ${options.name}: ${signal}: stopping\n`);
    void agent.stop();
  };
  for (const signal of INTERRUPT_SIGNALS) process.on(signal, onSignal);
  const code = await agent.done;
  for (const signal of INTERRUPT_SIGNALS) process.off(signal, onSignal);
  return interrupted ? EXIT.interrupted : code;
}
