/**
 * lab: a NAT lab of network namespaces (hosts behind emulated NAT routers, a public rendezvous host)
 * to watch TCP hole punching work and fail; and the NAT matrix over every router behaviour.
 */

import { isAlive, startChild } from '../lib/core/childProcess.ts';
import { parseCount, parseDuration, parseFlags, runMain } from '../lib/core/cli.ts';
import { EXIT, ExitError, UsageError } from '../lib/core/errors.ts';
import {
  applyLab,
  isOrphan,
  liveStates,
  probeLab,
  removeNamespaces,
  teardownLab,
} from '../lib/lab/buildLab.ts';
import { findLabs, type LabSelector } from '../lib/lab/findLabs.ts';
import { formatMatrix, matrixRows, selectRows } from '../lib/lab/matrixRows.ts';
import { runPunchAgent } from '../lib/lab/punchAgent.ts';
import { runNatMatrix } from '../lib/lab/runMatrix.ts';
import { describeBehaviour, LAB_ID, parseTopology, planLab } from '../lib/lab/topology.ts';
import type { LabPlan, LabState } from '../lib/lab/types.ts';
import {
  enterLabUserNamespace,
  insideLabUserNamespace,
  reexecInLabUserNamespace,
} from '../lib/lab/userNamespace.ts';

const USAGE =
  'lab.ts up [TOPOLOGY] | down [ID|--all] | status [ID|--all] | exec HOST -- COMMAND [ARG...] | matrix [--punches N] [--deadline 3s] [--retry-interval 0ms] [--rows LIST] [--filter WORDS]';
/** --help: every command and option, described once (docs/lab.md quotes it). */
const HELP = `usage: ${USAGE}

A NAT lab of network namespaces: private hosts behind emulated NAT routers (nftables), a public host
for the rendezvous server, all joined by a bridge. Runs as root, or unprivileged inside a user
namespace that lives as long as the command.

commands:
  up [TOPOLOGY]         build a lab (default eim:apdf:drop,eim:apdf:drop); refuses if one of this
                        clone is up
  status [ID|--all]     the labs up: hosts, namespaces, addresses, router behaviours
  exec HOST -- COMMAND  run COMMAND in a host of this clone's lab (rv, alice, alice-nat, bob, bob-nat,
                        ..., internet); exits with its code
  down [ID|--all]       remove labs and whatever runs in them
  matrix                build a lab, punch through every combination of router behaviours, and
                        compare each row with its expected outcome (the table goes to stdout)
matrix options:
  --punches N           punches per row, 1..100 (default 3)
  --deadline D          how long one punch may take, 500ms..60s (default 3s; rows expected to succeed
                        only by timing get three times as long)
  --retry-interval D    pause between connect attempts after a refusal, 0..1s (default 0ms: at once)
  --rows LIST           run only these rows: numbers and ranges as in the table, e.g. 1-4,38,42-
                        (--only is another name for it)
  --filter WORDS        run only the rows whose routers, timing, layout or reason contain every word,
                        e.g. --filter 'hold6s skew'

which labs: status, down and exec act on the labs this user made from this clone (state in
  /run/simopen-lab/CLONE as root, else $TMPDIR/simopen-lab-UID/CLONE; SIMOPEN_LAB_STATE_DIR
  overrides); ID: the lab with that id (status shows it), from any clone; --all: every lab of this
  user, and as root every lab namespace on the machine (down names each lab it removes).
A lab's processes (rendezvous server, punch agents) end with the command that started them, even if
it is killed; the namespaces of a killed command stay until lab.ts down.

TOPOLOGY: comma-separated sites, [CGNAT/]ROUTER[*N]: N hosts (default 1) behind ROUTER, and with
CGNAT that router behind a carrier-grade NAT (a double NAT). Hosts are named alice, bob, carol,
dave, erin, frank in order (six at most). A router is fields separated by ':', each at most once,
in any order, missing ones eim:apdf:drop
  MAPPING     eim (endpoint-independent) | edm (endpoint-dependent: symmetric)
  ALLOCATION  preserve (eim's default) | sequential | random (edm's default); edm:preserve is refused
  FILTERING   apdf (address-and-port-dependent) | adf (address-dependent) | eif (endpoint-independent)
  INBOUND     drop | rst | icmp (administratively prohibited) | hold6s (RFC 5382: held 6 s, then
              ICMP port unreachable unless an outbound SYN of the flow came): an unsolicited SYN
  hairpin     hosts behind the router reach each other through its public address
  idle=D      an idle TCP mapping expires after D (whole seconds), e.g. idle=2m
  LOSS%       packets dropped at random by the router, e.g. 5%
  e.g. 'edm:sequential/eim,eim:hairpin*2' (quote * and / from the shell)
hosts: rv (203.0.113.10), alice-nat, alice (10.0.1.2), bob-nat, bob (10.0.2.2), ...; hosts behind
  one router: 10.0.1.2, 10.0.1.3, ...; behind a CGNAT: alice-cgnat (203.0.113.1 | 100.64.1.1),
  alice-nat (100.64.1.2 | 10.0.1.1)

signals: SIGINT, SIGTERM and SIGHUP end a command after removing what it built, exit 130; an
  unprivileged up (which holds its lab until told to go) removes its lab and exits 0; exec passes the
  signal to the command and exits with its code.
exit codes: 0 ok (matrix: every row matched), 1 failure, 2 bad usage, 3 matrix: a row did not match,
            4 no lab is up (status, exec) or one already is (up), 5 no lab possible here (ip or nft
            missing; not root and no user namespaces), 130 interrupted (SIGINT, SIGTERM, SIGHUP; the
            lab is removed first)`;

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
          : host.role === 'management'
            ? `management network ${host.addresses[0]}/24 (a stress.ts --lab coordinator)`
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

/** `status|down [ID | --all]`: which labs the command acts on. */
function labSelector(command: string, args: string[]): LabSelector {
  const { values, positionals } = parseFlags(args, { all: { type: 'boolean' } });
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const [id] = positionals;
  if (id !== undefined && values.all) throw new UsageError(`${command}: give a lab id or --all, not both`);
  if (id !== undefined && !LAB_ID.test(id))
    throw new UsageError(`${command}: '${id}' is not a lab id (1..12 of [a-z0-9], as status shows)`);
  return values.all ? { kind: 'all' } : id !== undefined ? { kind: 'id', id } : { kind: 'this' };
}

function describeState(state: LabState): string {
  const owner = state.userNamespace
    ? `unprivileged, held by pid ${state.ownerPid}`
    : state.persistent
      ? 'up until lab.ts down'
      : isOrphan(state)
        ? `its owner (pid ${state.ownerPid}) is gone: lab.ts down ${state.plan.id} removes it`
        : `owned by pid ${state.ownerPid}`;
  return `${describeLab(state.plan)}\n  (${owner}, since ${state.createdAt}; state in ${state.stateDirectory})\n`;
}

/** After "nothing here": say whether there are labs elsewhere, and how to see them. */
function otherLabsHint(selector: LabSelector): string {
  if (selector.kind !== 'this') return '';
  const { states, strays } = findLabs({ kind: 'all' });
  const count = states.length + strays.size;
  return count ? ` (${count} other lab(s) on this machine: lab.ts status --all)` : '';
}

async function status(args: string[]): Promise<number> {
  const selector = labSelector('status', args);
  const { states, strays } = findLabs(selector);
  if (!states.length && !strays.size) {
    process.stdout.write(
      `${selector.kind === 'id' ? `no lab ${selector.id}` : 'no lab is up'}${otherLabsHint(selector)}\n`,
    );
    return LAB_EXIT.noLab;
  }
  for (const state of states) process.stdout.write(describeState(state));
  for (const [id, namespaces] of strays)
    process.stdout.write(
      `lab ${id} (namespaces only, no state file among this user's clones; lab.ts down ${id} removes them):\n  ${namespaces.join(' ')}\n`,
    );
  return EXIT.ok;
}

async function down(args: string[]): Promise<number> {
  const selector = labSelector('down', args);
  requireLabFacilities();
  const { states, strays } = findLabs(selector);
  if (selector.kind === 'id' && !states.length && !strays.size) {
    process.stdout.write(`no lab ${selector.id}\n`);
    return LAB_EXIT.noLab;
  }
  // Unprivileged labs end with the process holding their namespaces.
  const holders = states.filter((state) => state.userNamespace);
  for (const state of holders) {
    try {
      process.kill(state.ownerPid, 'SIGTERM');
    } catch {}
  }
  const until = Date.now() + 5000;
  while (holders.some((state) => isAlive(state.ownerPid)) && Date.now() < until)
    await new Promise((resolve) => setTimeout(resolve, 50));
  for (const state of holders)
    process.stdout.write(`stopped lab ${state.plan.id} (unprivileged, held by pid ${state.ownerPid})\n`);
  const problems = holders
    .filter((state) => isAlive(state.ownerPid))
    .map((state) => `lab ${state.plan.id}: pid ${state.ownerPid} did not end`);
  let removedAny = holders.length > 0;
  if (process.getuid?.() === 0) {
    for (const state of states.filter((entry) => !entry.userNamespace)) {
      const result = teardownLab(state.plan, state);
      process.stdout.write(
        `removed lab ${state.plan.id}: ${result.removed.join(' ') || '(namespaces already gone)'}\n`,
      );
      problems.push(...result.problems);
      removedAny = true;
    }
    for (const [id, namespaces] of strays) {
      const result = removeNamespaces(namespaces);
      process.stdout.write(`removed lab ${id} (no state file): ${result.removed.join(' ')}\n`);
      problems.push(...result.problems);
      removedAny = true;
    }
  }
  if (!removedAny) process.stdout.write(`nothing to remove${otherLabsHint(selector)}\n`);
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
  // The terminal's Ctrl-C reaches the command directly (same process group): just wait for it. A
  // SIGTERM or SIGHUP sent to us alone is passed on, so the command never outlives us.
  const ignore = () => {};
  const forward = (signal: NodeJS.Signals) => child.process.kill(signal);
  process.on('SIGINT', ignore);
  process.on('SIGTERM', forward);
  process.on('SIGHUP', forward);
  try {
    return await child.exited;
  } catch (error) {
    process.stderr.write(`lab: cannot run ip netns exec: ${(error as Error).message}\n`);
    return EXIT.failure;
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGTERM', forward);
    process.off('SIGHUP', forward);
  }
}

async function matrix(args: string[]): Promise<number> {
  const { values } = parseFlags(
    args,
    {
      punches: { type: 'string', default: '3' },
      deadline: { type: 'string', default: '3s' },
      'retry-interval': { type: 'string', default: '0ms' },
      rows: { type: 'string' },
      only: { type: 'string' },
      filter: { type: 'string' },
    },
    false,
  );
  const punches = parseCount(values.punches, '--punches', 1, 100);
  const deadlineMs = parseDuration(values.deadline, '--deadline');
  if (deadlineMs < 500 || deadlineMs > 60_000) throw new UsageError('--deadline must be within 500ms..60s');
  const retryIntervalMs = parseDuration(values['retry-interval'], '--retry-interval');
  if (retryIntervalMs > 1000) throw new UsageError('--retry-interval must be within 0..1s');
  if (values.rows !== undefined && values.only !== undefined)
    throw new UsageError('--only is another name for --rows: give one of them');
  const rows = selectRows(matrixRows(), values.rows ?? values.only, values.filter);
  requireLabFacilities();
  if (needsUserNamespace()) return reexecInLabUserNamespace();
  const labId = String(process.pid);
  process.stderr.write(
    `matrix: ${rows.length} rows x ${punches} punches, deadline ${deadlineMs} ms per punch, in lab ${labId}\n`,
  );
  const summaries = await runNatMatrix({
    labId,
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
