/**
 * stress.ts --lab killed with SIGKILL (no handler runs, as with the OOM killer): its janitor
 * (lib/lab/labJanitor.ts) removes the lab, and the agents and the coordinator end. Needs root with
 * ip, nft and conntrack; the lab's id is the pid of the stress.ts this run starts (labScope.ts).
 */
import { describe, expect, it } from 'vitest';
import { labRuns, namespacesOfThisRun, processesInLab, skipLabTests } from '../helpers/labScope.ts';

const skip = skipLabTests('stress --lab SIGKILL test', { conntrack: true });

const runs = labRuns('stress');
describe.skipIf(skip)('stress.ts --lab killed', () => {
  it('SIGKILL of stress.ts mid-run: the lab is removed all the same, agents and coordinator end', async () => {
    const run = runs.start(['--lab', 'eim:apdf:drop,eim:apdf:drop', '--pairs', '1000000', '--rate', '2000']);
    const id = String(run.pid);
    await run.waitForLine(/pairs start now/, 90_000);
    expect(namespacesOfThisRun().length).toBeGreaterThan(0);
    expect(processesInLab(id).length).toBeGreaterThan(0);
    run.process.kill('SIGKILL');
    expect(await run.exited).toBe(137);
    await expect.poll(() => namespacesOfThisRun(), { timeout: 60_000, interval: 500 }).toEqual([]);
  }, 150_000);
});
