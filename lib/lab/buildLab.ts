/**
 * Builds and tears down a lab plan (topology.ts) on this machine with `ip netns` and `nft`, and
 * records each lab in a state file (labState.ts) so `lab.ts status|exec|down` work from later
 * invocations. Needs root (or to run inside a user+mount+network namespace where we are root: see
 * userNamespace.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { isAlive } from '../core/childProcess.ts';
import { EXIT } from '../core/errors.ts';
import { readStates, removeState, stateDirectory, writeState } from './labState.ts';
import { NAMESPACE_PREFIX, namespaceName, routerRuleset } from './topology.ts';
import type { LabPlan, LabState, RouterBehaviour } from './types.ts';
import { insideLabUserNamespace, probeUserNamespace } from './userNamespace.ts';

/**
 * The labs in a state directory (this clone's by default) that still exist. A user-namespace lab
 * whose holder has ended is gone with it; a lab whose owner has ended and whose namespaces are all
 * gone too (removed by id, say) has nothing left. Their state files are removed.
 */
export function liveStates(directory: string = stateDirectory()): LabState[] {
  const namespaces = new Set(listLabNamespaces());
  return readStates(directory).filter((state) => {
    const gone = state.userNamespace
      ? !isAlive(state.ownerPid)
      : !isAlive(state.ownerPid) && !state.plan.hosts.some((host) => namespaces.has(host.namespace));
    if (gone) removeState(state.plan.id, state.stateDirectory);
    return !gone;
  });
}

/** A lab whose owner died without removing it (SIGKILL): `lab.ts down` removes it. */
export function isOrphan(state: LabState): boolean {
  return !state.persistent && !state.userNamespace && !isAlive(state.ownerPid);
}

function run(argv: string[], input?: string): void {
  const [command, ...args] = argv as [string, ...string[]];
  try {
    execFileSync(command, args, { input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`${argv.join(' ')} failed: ${stderr || (error as Error).message}`);
  }
}

/** Namespaces on this machine whose name starts with the lab prefix. */
export function listLabNamespaces(): string[] {
  const result = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (result.status !== 0) return [];
  return result.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(NAMESPACE_PREFIX));
}

/** Builds the lab; on any failure removes what was built and rethrows. */
export function applyLab(plan: LabPlan, options: { persistent?: boolean } = {}): LabState {
  const state: LabState = {
    plan,
    ownerPid: process.pid,
    persistent: options.persistent ?? false,
    userNamespace: insideLabUserNamespace(),
    createdAt: new Date().toISOString(),
    stateDirectory: stateDirectory(),
  };
  // State first: if we are killed half-way, `down` still knows what to remove.
  writeState(state);
  try {
    for (const argv of plan.commands) run(argv);
    for (const [namespace, ruleset] of Object.entries(plan.rulesets))
      run(['ip', 'netns', 'exec', namespace, 'nft', '-f', '-'], ruleset);
  } catch (error) {
    teardownLab(plan, state);
    throw error;
  }
  return state;
}

/**
 * Replaces one router's behaviour in a running lab (the matrix does this between rows). `host` is a
 * private host (the router in front of it) or a router's own name (alice-nat, alice-cgnat).
 */
export function reconfigureRouter(plan: LabPlan, host: string, behaviour: RouterBehaviour): void {
  const named = plan.hosts.find((entry) => entry.name === host);
  const router =
    named?.role === 'router'
      ? named
      : plan.hosts.find((entry) => entry.name === (named?.router ?? `${host}-nat`));
  if (router?.role !== 'router' || !router.addresses[0]) throw new Error(`no router in front of '${host}'`);
  run(
    ['ip', 'netns', 'exec', router.namespace, 'nft', '-f', '-'],
    routerRuleset(behaviour, router.addresses[1] ?? '', router.addresses[0]),
  );
  // A reconfigured router starts afresh, as after a reboot: no connection of the old behaviour
  // lingers (a sequential counter starts over and must not meet its old ports' entries).
  forgetConnections(router.namespace);
  router.behaviour = behaviour;
}

/** Empties a namespace's conntrack table (`conntrack -F`, from npm run setup). */
export function forgetConnections(namespace: string): void {
  const result = spawnSync('ip', ['netns', 'exec', namespace, 'conntrack', '-F'], { encoding: 'utf8' });
  if (result.status !== 0)
    throw new Error(
      `conntrack -F in ${namespace} failed: ${result.stderr.trim() || result.error?.message || `exit ${result.status}`} (conntrack comes with npm run setup)`,
    );
}

/** pids of processes whose network namespace is one of the lab's. */
function namespacePids(namespace: string): number[] {
  const result = spawnSync('ip', ['netns', 'pids', namespace], { encoding: 'utf8' });
  if (result.status !== 0) return [];
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 1 && pid !== process.pid);
}

function killAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Removes the lab's namespaces (their veths, addresses and nft tables go with them) after ending
 * every process still inside them, and its state file (this clone's, unless `state` says where).
 * Never throws: teardown runs on error paths. Returns the namespaces removed and the problems met.
 */
export function teardownLab(plan: LabPlan, state?: LabState): { removed: string[]; problems: string[] } {
  const result = removeNamespaces(plan.hosts.map((host) => host.namespace));
  removeState(plan.id, state?.stateDirectory ?? stateDirectory());
  return result;
}

/**
 * Ends every process in these namespaces (SIGTERM, then SIGKILL after a second) and deletes those
 * that exist, last first. Returns the ones deleted and the problems met.
 */
export function removeNamespaces(namespaces: string[]): { removed: string[]; problems: string[] } {
  const problems: string[] = [];
  const removed: string[] = [];
  const existing = new Set(listLabNamespaces());
  const pids = namespaces.filter((name) => existing.has(name)).flatMap(namespacePids);
  killAll(pids, 'SIGTERM');
  if (pids.length) {
    // Give them a moment to exit cleanly, then insist.
    const until = Date.now() + 1000;
    while (Date.now() < until && pids.some(isAlive))
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    killAll(pids.filter(isAlive), 'SIGKILL');
  }
  for (const name of [...namespaces].reverse()) {
    if (!existing.has(name)) continue;
    const result = spawnSync('ip', ['netns', 'delete', name], { encoding: 'utf8' });
    if (result.status === 0) removed.push(name);
    else problems.push(`ip netns delete ${name}: ${result.stderr.trim()}`);
  }
  return { removed: removed.reverse(), problems };
}

/** Lab namespaces on this machine grouped by lab id (`simopen-lab-<id>-<host>`). */
export function labNamespacesById(): Map<string, string[]> {
  const byId = new Map<string, string[]>();
  for (const name of listLabNamespaces()) {
    const id = /^([a-z0-9]+)-/.exec(name.slice(NAMESPACE_PREFIX.length))?.[1];
    if (id) byId.set(id, [...(byId.get(id) ?? []), name]);
  }
  return byId;
}

/** The namespaces a lab id owns on this machine (whatever state made it, or none). */
export function namespacesOfLab(id: string): string[] {
  const prefix = namespaceName(id, '');
  return listLabNamespaces().filter((name) => name.startsWith(prefix));
}

/** Tears the lab down when this process ends or is interrupted; returns a function that disarms it. */
export function teardownOnExit(plan: LabPlan, onSignal?: (signal: NodeJS.Signals) => void): () => void {
  let done = false;
  const cleanup = () => {
    if (done) return;
    done = true;
    teardownLab(plan);
  };
  const signalHandler = (signal: NodeJS.Signals) => {
    cleanup();
    if (onSignal) onSignal(signal);
    // Every interrupting signal is the same interruption to the user: 130, as every script exits.
    else process.exit(EXIT.interrupted);
  };
  process.once('exit', cleanup);
  process.once('SIGINT', signalHandler);
  process.once('SIGTERM', signalHandler);
  process.once('SIGHUP', signalHandler);
  return () => {
    cleanup();
    process.off('exit', cleanup);
    process.off('SIGINT', signalHandler);
    process.off('SIGTERM', signalHandler);
    process.off('SIGHUP', signalHandler);
  };
}

/** Can a lab be built here: as root (ip netns), or else in a user namespace? Reason says how, or what is missing. */
export function probeLab(): { ok: boolean; reason: string; userNamespace: boolean } {
  for (const tool of ['ip', 'nft']) {
    const found = spawnSync(tool, ['-V'], { encoding: 'utf8' });
    if (found.error) return { ok: false, reason: `'${tool}' is not installed`, userNamespace: false };
  }
  if (process.getuid?.() === 0) return { ok: true, reason: 'root with ip and nft', userNamespace: false };
  return { ...probeUserNamespace(), userNamespace: true };
}
