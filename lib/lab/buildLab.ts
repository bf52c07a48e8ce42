/**
 * Builds and tears down a lab plan (labTopology.ts) on this machine with `ip netns` and `nft`, and
 * keeps a state file per lab so `lab.ts status|exec|down` work from later invocations.
 * Needs root (or to run inside a user+mount+network namespace where we are root: see labSandbox.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NAMESPACE_PREFIX, routerRuleset } from './topology.ts';
import type { LabPlan, LabState, RouterBehaviour } from './types.ts';
import { insideLabUserNamespace, probeUserNamespace, USERNS_ENV } from './userNamespace.ts';

/** Where state files live: /run for root; for anyone else the temp dir (inside the user namespace /run is ours). */
export function stateDirectory(): string {
  if (process.env.SIMOPEN_LAB_STATE_DIR) return process.env.SIMOPEN_LAB_STATE_DIR;
  if (process.getuid?.() === 0 && !insideLabUserNamespace()) return '/run/simopen-lab';
  const uid = insideLabUserNamespace() ? process.env[`${USERNS_ENV}_OUTER_UID`] : process.getuid?.();
  return path.join(os.tmpdir(), `simopen-lab-${uid ?? 'user'}`);
}

function statePath(id: string): string {
  return path.join(stateDirectory(), `${id}.json`);
}

function removeState(id: string): void {
  fs.rmSync(statePath(id), { force: true });
  try {
    // The directory goes with its last lab (rmdir refuses while other labs' files are there).
    fs.rmdirSync(stateDirectory());
  } catch {}
}

export function writeState(state: LabState): void {
  fs.mkdirSync(stateDirectory(), { recursive: true, mode: 0o700 });
  fs.writeFileSync(statePath(state.plan.id), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

/** Labs that still exist: a user-namespace lab whose holder has ended is gone with it (its file is removed). */
export function liveStates(): LabState[] {
  return readStates().filter((state) => {
    if (!state.userNamespace || isAlive(state.ownerPid)) return true;
    removeState(state.plan.id);
    return false;
  });
}

export function readStates(): LabState[] {
  let names: string[];
  try {
    names = fs.readdirSync(stateDirectory()).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  const states: LabState[] = [];
  for (const name of names) {
    try {
      states.push(JSON.parse(fs.readFileSync(path.join(stateDirectory(), name), 'utf8')) as LabState);
    } catch {
      // A torn or foreign file: ignore it rather than fail every command.
    }
  }
  return states;
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
  };
  // State first: if we are killed half-way, `down` still knows what to remove.
  writeState(state);
  try {
    for (const argv of plan.commands) run(argv);
    for (const [namespace, ruleset] of Object.entries(plan.rulesets))
      run(['ip', 'netns', 'exec', namespace, 'nft', '-f', '-'], ruleset);
  } catch (error) {
    teardownLab(plan);
    throw error;
  }
  return state;
}

/** Replaces one router's behaviour in a running lab (the matrix does this between rows). */
export function reconfigureRouter(plan: LabPlan, host: string, behaviour: RouterBehaviour): void {
  const router = plan.hosts.find((entry) => entry.name === `${host}-nat`);
  const lan = plan.hosts.find((entry) => entry.name === host);
  if (!router || !lan?.addresses[0]) throw new Error(`no router in front of '${host}'`);
  run(
    ['ip', 'netns', 'exec', router.namespace, 'nft', '-f', '-'],
    routerRuleset(behaviour, lan.addresses[0]),
  );
  router.behaviour = behaviour;
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
 * every process still inside them, and its state file. Never throws: teardown runs on error paths.
 */
export function teardownLab(plan: LabPlan): string[] {
  const problems: string[] = [];
  const namespaces = plan.hosts.map((host) => host.namespace);
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
    if (result.status !== 0) problems.push(`ip netns delete ${name}: ${result.stderr.trim()}`);
  }
  removeState(plan.id);
  return problems;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * `lab.ts down`: every lab with a state file, plus any lab-prefixed namespace left by a process that
 * was killed before it could clean up. Returns what was removed and any problems.
 */
export function teardownAll(): { removed: string[]; problems: string[] } {
  const removed: string[] = [];
  const problems: string[] = [];
  for (const state of readStates()) {
    removed.push(
      ...state.plan.hosts.map((host) => host.namespace).filter((n) => listLabNamespaces().includes(n)),
    );
    problems.push(...teardownLab(state.plan));
  }
  for (const name of listLabNamespaces()) {
    killAll(namespacePids(name), 'SIGKILL');
    const result = spawnSync('ip', ['netns', 'delete', name], { encoding: 'utf8' });
    if (result.status === 0) removed.push(name);
    else problems.push(`ip netns delete ${name}: ${result.stderr.trim()}`);
  }
  return { removed, problems };
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
    else process.exit(signal === 'SIGINT' ? 130 : 143);
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
