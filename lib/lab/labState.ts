/**
 * The state files that let later `lab.ts status|exec|down` find the labs an earlier command made.
 * One directory per user and clone: labs made from one clone are that clone's, so `lab.ts down` in
 * one clone never touches a lab made from another (or by another user).
 *
 *   root:        /run/simopen-lab/<clone>/<lab id>.json
 *   other users: $TMPDIR/simopen-lab-<uid>/<clone>/<lab id>.json
 *
 * <clone> is a hash of the clone's path. SIMOPEN_LAB_STATE_DIR names the directory instead (the
 * tests give each run its own).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../core/childProcess.ts';
import type { LabState } from './types.ts';
import { insideLabUserNamespace, USERNS_ENV } from './userNamespace.ts';

export const STATE_DIR_ENV = 'SIMOPEN_LAB_STATE_DIR';

/** What decides where the state lives (all of it from the process, except in tests). */
export interface StateContext {
  env: NodeJS.ProcessEnv;
  /** Our uid, or inside the lab's user namespace the uid outside it. */
  uid: number | undefined;
  /** Root outside any user namespace: the machine-wide /run. */
  root: boolean;
  tmpdir: string;
  /** The clone this code runs from (its real path). */
  clone: string;
}

export function currentStateContext(): StateContext {
  const inside = insideLabUserNamespace();
  const outerUid = Number(process.env[`${USERNS_ENV}_OUTER_UID`]);
  let clone = REPO_ROOT;
  try {
    clone = fs.realpathSync(REPO_ROOT);
  } catch {}
  return {
    env: process.env,
    uid: inside && Number.isInteger(outerUid) ? outerUid : process.getuid?.(),
    root: process.getuid?.() === 0 && !inside,
    tmpdir: os.tmpdir(),
    clone,
  };
}

/** The directory holding every state directory of this user (one per clone). */
export function stateBase(context: StateContext = currentStateContext()): string {
  // Inside the user namespace /run is private to the lab: the temp dir is what other commands see.
  return context.root
    ? '/run/simopen-lab'
    : path.join(context.tmpdir, `simopen-lab-${context.uid ?? 'user'}`);
}

/** A short, stable name for a clone: the first 12 hex digits of the SHA-256 of its path. */
export function cloneKey(clone: string): string {
  return createHash('sha256').update(path.resolve(clone)).digest('hex').slice(0, 12);
}

/** This clone's state directory for this user (or SIMOPEN_LAB_STATE_DIR). */
export function stateDirectory(context: StateContext = currentStateContext()): string {
  return context.env[STATE_DIR_ENV] || path.join(stateBase(context), cloneKey(context.clone));
}

/** This clone's directory first, then every other clone's of this user (for --all and lab ids). */
export function allStateDirectories(context: StateContext = currentStateContext()): string[] {
  const base = stateBase(context);
  let others: string[] = [];
  try {
    others = fs
      .readdirSync(base, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => path.join(base, entry.name));
  } catch {}
  return [...new Set([stateDirectory(context), ...others])];
}

function statePath(id: string, directory: string): string {
  return path.join(directory, `${id}.json`);
}

export function writeState(state: LabState): void {
  const directory = state.stateDirectory;
  fs.mkdirSync(directory, { recursive: true, mode: 0o700 });
  fs.writeFileSync(statePath(state.plan.id, directory), `${JSON.stringify(state, null, 2)}\n`, {
    mode: 0o600,
  });
}

export function removeState(id: string, directory: string): void {
  fs.rmSync(statePath(id, directory), { force: true });
  // The directories go with their last lab (rmdir refuses while other files are there).
  try {
    fs.rmdirSync(directory);
    if (path.dirname(directory) === stateBase()) fs.rmdirSync(stateBase());
  } catch {}
}

/** The states in one directory (this clone's by default); torn or foreign files are skipped. */
export function readStates(directory: string = stateDirectory()): LabState[] {
  let names: string[];
  try {
    names = fs.readdirSync(directory).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  const states: LabState[] = [];
  for (const name of names) {
    try {
      const state = JSON.parse(fs.readFileSync(path.join(directory, name), 'utf8')) as LabState;
      // Where it was found is where it lives (also for files written before the field existed).
      states.push({ ...state, stateDirectory: directory });
    } catch {
      // A torn or foreign file: ignore it rather than fail every command.
    }
  }
  return states;
}
