/**
 * Processes this test file started, directly or through others (sandbox re-execs, lab agents, `ip
 * netns exec`, runuser): each carries SIMOPEN_TEST_RUN=<this process's pid> in its environment, so
 * leftover checks see only this run's processes, never those of another run on the same machine.
 */
import { readdirSync, readFileSync } from 'node:fs';

export const TEST_RUN = process.env.SIMOPEN_TEST_RUN ?? String(process.pid);
// Set before any child is started: every child inherits it.
process.env.SIMOPEN_TEST_RUN = TEST_RUN;

/** Command lines of the live processes of this run (not this process itself). */
export function processesOfThisRun(): string[] {
  const marker = `SIMOPEN_TEST_RUN=${TEST_RUN}`;
  const found: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const environment = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0');
      if (!environment.includes(marker)) continue;
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (args) found.push(`${name} ${args}`);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}
