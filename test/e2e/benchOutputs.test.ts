/** bench/run.ts checks its --json before minutes of measuring: exit 2 with the reason, nothing measured. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { probeSandbox } from '../../lib/core/sandbox.ts';
import { repoRoot } from '../helpers/runScript.ts';

const sandbox = probeSandbox();
const needsSandbox = sandbox.ok || process.env.CI ? it : it.skip;

describe('bench --json', () => {
  needsSandbox('refuses an output it cannot write before measuring (ENOSPC, ENOENT)', () => {
    for (const [path, reason] of [
      ['/dev/full', 'ENOSPC: no space left on device'],
      ['/proc/simopen-bench-x', 'ENOENT: no such file or directory'],
    ]) {
      const result = spawnSync(
        process.execPath,
        ['--import', 'tsx', 'bench/run.ts', '--quick', '--only', 'stress', '--json', path as string],
        { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 },
      );
      expect(result.status, result.stderr).toBe(2);
      expect(result.stderr.split('\n')[0]).toBe(`bench: --json: ${path} cannot be written: ${reason}`);
      expect(result.stdout).not.toMatch(/stress\.ts, /);
    }
  });
});
