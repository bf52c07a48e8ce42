/**
 * lab: a NAT lab of network namespaces (hosts behind emulated NAT routers, a public rendezvous host)
 * to watch TCP hole punching work and fail; and the NAT matrix over every router behaviour.
 */

import { startChild } from '../lib/core/childProcess.ts';
import { parseCount, parseDuration, parseFlags, runMain } from '../lib/core/cli.ts';
import { EXIT, ExitError, UsageError } from '../lib/core/errors.ts';
import { applyLab, isAlive, liveStates, probeLab, teardownAll, teardownLab } from '../lib/lab/buildLab.ts';
import { formatMatrix, matrixRows } from '../lib/lab/matrixRows.ts';
import { runPunchAgent } from '../lib/lab/punchAgent.ts';
import { runNatMatrix } from '../lib/lab/runMatrix.ts';
import { describeBehaviour, parseTopology, planLab } from '../lib/lab/topology.ts';
import type { LabPlan, LabState } from '../lib/lab/types.ts';
import {
  enterLabUserNamespace,
  insideLabUserNamespace,
  reexecInLabUserNamespace,
} from '../lib/lab/userNamespace.ts';

const USAGE =
  'lab.ts up [TOPOLOGY] | down | status | exec HOST -- COMMAND [ARG...] | matrix [--punches N] [--deadline 3s] [--retry-interval 0ms] [--only ROW,...]';
const HELP = `usage: ${USAGE}
  TOPOLOGY: comma-separated routers, one per private host (alice, bob, carol, ...), each MAPPING:FILTERING:INBOUND[:LOSS%]
    MAPPING   eim (endpoint-independent, port-preserving) | edm (endpoint-dependent, random ports: symmetric)
    FILTERING apdf (address-and-port-dependent) | eif (endpoint-independent)
    INBOUND   drop | rst (what the router does with an unsolicited SYN)
    LOSS%     packets dropped at random by the router, e.g. 5%
  default: eim:apdf:drop,eim:apdf:drop; hosts: rv (203.0.113.10), alice-nat, alice (10.0.1.2), bob-nat, bob (10.0.2.2), ...
  exit codes: 0 ok, 1 failure, 2 usage, 3 matrix mismatch, 4 no lab (or one already up), 5 no lab possible here`;

/** lab.ts exit codes beyond the shared ones. */
const LAB_EXIT = {
  ...EXIT,
  /** The matrix ran but at least one row did not match its expectation. */
  mismatch: 3,
  /** No lab is up (status, exec), or one already is (up). */
  noLab: 4,
  /** This machine cannot build a lab (ip or nft missing; not root and no user namespaces). */
  unavailable: 5,
} as const;

function requireLabFacilities() {
  const probe = probeLab();
  if (!probe.ok) throw new ExitError(`cannot build a lab here: ${probe.reason}`, LAB_EXIT.unavailable);
}

function currentLab(): LabState {
  const states = liveStates();
  const state = states.find((entry) => entry.persistent) ?? states[0];
  if (!state) throw new ExitError('no lab is up (start one with: lab.ts up)', LAB_EXIT.noLab);
  return state;
}

/** Not root: build the lab inside a user+network+mount namespace by running this command again there. */
function needsUserNamespace(): boolean {
  return process.getuid?.() !== 0 && !insideLabUserNamespace();
}

function describeLab(plan: LabPlan): string {
  const lines = [`lab ${plan.id}:`];
  for (const host of plan.hosts) {
    if (host.role === 'internet') continue;
    const what =
      host.role === 'router' && host.behaviour
        ? `NAT router (WAN ${host.addresses[0]}, LAN ${host.addresses[1]}): ${describeBehaviour(host.behaviour)}`
        : host.role === 'rendezvous'
          ? `public host ${host.addresses[0]} (run the rendezvous server here)`
          : `private host ${host.addresses[0]}`;
    lines.push(`  ${host.name.padEnd(10)} ${host.namespace.padEnd(28)} ${what}`);
  }
  return lines.join('\n');
}

async function up(args: string[]): Promise<number> {
  const { positionals } = parseFlags(args, {});
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const topology = parseTopology(positionals[0]);
  requireLabFacilities();
  const existing = liveStates().find((state) => state.persistent);
  if (existing)
    throw new ExitError(`a lab is already up (${existing.plan.id}); run lab.ts down first`, LAB_EXIT.noLab);
  if (needsUserNamespace()) return reexecInLabUserNamespace();
  const plan = planLab(String(process.pid), topology);
  applyLab(plan, { persistent: true });
  process.stdout.write(`${describeLab(plan)}\nrun commands in it with: lab.ts exec HOST -- COMMAND\n`);
  if (!insideLabUserNamespace()) {
    process.stdout.write('remove it with: lab.ts down\n');
    return EXIT.ok;
  }
  // Unprivileged: the namespaces live as long as this process, so stay until told to go.
  process.stdout.write('this lab lives as long as this command: Ctrl-C (or lab.ts down) removes it\n');
  // Signal listeners alone do not keep Node running: a timer does.
  const keepAlive = setInterval(() => {}, 60_000);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(name, () => resolve(name));
  });
  clearInterval(keepAlive);
  teardownLab(plan);
  process.stdout.write(`lab ${plan.id} removed (${signal})\n`);
  return EXIT.ok;
}

async function status(args: string[]): Promise<number> {
  parseFlags(args, {}, false);
  const states = liveStates();
  if (!states.length) {
    process.stdout.write('no lab is up\n');
    return LAB_EXIT.noLab;
  }
  for (const state of states)
    process.stdout.write(
      `${describeLab(state.plan)}\n  (${state.userNamespace ? `unprivileged, held by pid ${state.ownerPid}` : state.persistent ? 'up until lab.ts down' : `owned by pid ${state.ownerPid}`}, since ${state.createdAt})\n`,
    );
  return EXIT.ok;
}

async function down(args: string[]): Promise<number> {
  parseFlags(args, {}, false);
  requireLabFacilities();
  // Unprivileged labs end with the process holding their namespaces.
  const holders = liveStates().filter((state) => state.userNamespace);
  for (const state of holders) process.kill(state.ownerPid, 'SIGTERM');
  const until = Date.now() + 5000;
  while (holders.some((state) => isAlive(state.ownerPid)) && Date.now() < until)
    await new Promise((resolve) => setTimeout(resolve, 50));
  if (holders.length)
    process.stdout.write(`stopped ${holders.map((state) => `lab ${state.plan.id}`).join(', ')}\n`);
  if (process.getuid?.() !== 0)
    return holders.some((state) => isAlive(state.ownerPid)) ? EXIT.failure : EXIT.ok;
  const { removed, problems } = teardownAll();
  process.stdout.write(removed.length ? `removed ${removed.join(' ')}\n` : 'nothing to remove\n');
  for (const problem of problems) process.stderr.write(`lab: ${problem}\n`);
  return problems.length ? EXIT.failure : EXIT.ok;
}

async function exec(args: string[]): Promise<number> {
  const separator = args.indexOf('--');
  if (separator !== 1 || args.length < 3) throw new UsageError('exec needs HOST -- COMMAND [ARG...]');
  const name = args[0] as string;
  const state = currentLab();
  const { plan } = state;
  const host = plan.hosts.find((entry) => entry.name === name);
  if (!host)
    throw new UsageError(
      `no host '${name}' in the lab (hosts: ${plan.hosts.map((entry) => entry.name).join(', ')})`,
    );
  const command = ['ip', 'netns', 'exec', host.namespace, ...args.slice(2)];
  const argv = state.userNamespace ? enterLabUserNamespace(state.ownerPid, command) : command;
  const child = startChild(argv[0] as string, argv.slice(1), { stdin: 'inherit', output: 'inherit' });
  // The terminal's Ctrl-C reaches the child directly (same process group): just wait for it.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  try {
    return await child.exited;
  } catch (error) {
    process.stderr.write(`lab: cannot run ip netns exec: ${(error as Error).message}\n`);
    return EXIT.failure;
  } finally {
    process.off('SIGINT', ignore);
  }
}

async function matrix(args: string[]): Promise<number> {
  const { values } = parseFlags(
    args,
    {
      punches: { type: 'string', default: '3' },
      deadline: { type: 'string', default: '3s' },
      'retry-interval': { type: 'string', default: '0ms' },
      only: { type: 'string' },
    },
    false,
  );
  const punches = parseCount(values.punches, '--punches', 1, 100);
  const deadlineMs = parseDuration(values.deadline, '--deadline');
  if (deadlineMs < 500 || deadlineMs > 60_000) throw new UsageError('--deadline must be within 500ms..60s');
  const retryIntervalMs = parseDuration(values['retry-interval'], '--retry-interval');
  if (retryIntervalMs > 1000) throw new UsageError('--retry-interval must be within 0..1s');
  const allRows = matrixRows();
  const only = values.only?.split(',').map((text) => parseCount(text, '--only', 1, allRows.length));
  const rows = only ? allRows.filter((row) => only.includes(row.number)) : allRows;
  requireLabFacilities();
  if (needsUserNamespace()) return reexecInLabUserNamespace();
  process.stderr.write(
    `matrix: ${rows.length} rows x ${punches} punches, deadline ${deadlineMs} ms per punch\n`,
  );
  const summaries = await runNatMatrix({
    rows,
    punches,
    deadlineMs,
    retryIntervalMs,
    onRow: (summary, index) =>
      process.stderr.write(
        `  row ${summary.row.number} (${index + 1}/${rows.length}): ${summary.successes}/${summary.punches} direct${summary.matches ? '' : ' MISMATCH'}\n`,
      ),
  });
  process.stdout.write(`${formatMatrix(summaries)}\n`);
  const mismatches = summaries.filter((summary) => !summary.matches).length;
  process.stderr.write(
    mismatches
      ? `matrix: ${mismatches} row(s) did not match their expectation\n`
      : 'matrix: every row matched its expectation\n',
  );
  return mismatches ? LAB_EXIT.mismatch : EXIT.ok;
}

async function agent(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { name: { type: 'string', default: 'peer' } }, false);
  await runPunchAgent(values.name);
  return EXIT.ok;
}

const commands: Record<string, (args: string[]) => Promise<number>> = {
  up,
  down,
  status,
  exec,
  matrix,
  agent,
};

runMain('lab', USAGE, async () => {
  const [command, ...rest] = process.argv.slice(2);
  if (command === '--help' || command === '-h') {
    process.stdout.write(`${HELP}\n`);
    return EXIT.ok;
  }
  const run = command ? commands[command] : undefined;
  if (!run) throw new UsageError(command ? `unknown command '${command}'` : 'missing command');
  return run(rest);
});
