/**
 * Node flags that worker threads refuse (V8 and per-process ones) do not stop stress.ts's pool:
 * `node --expose-gc --max-old-space-size=N stress.ts` used to fail with ERR_WORKER_INVALID_EXEC_ARGV
 * (and, with --trace, hang with its trace running).
 */
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, startChild } from '../../lib/core/childProcess.ts';
import { probeSandbox } from '../../lib/core/sandbox.ts';

const sandbox = probeSandbox();
const needsSandbox = sandbox.ok || process.env.CI ? it : it.skip;

describe('stress.ts under node flags that worker threads refuse', () => {
  needsSandbox('leaves them out of the workers, says so, and runs every pair', async () => {
    const child = startChild(
      process.execPath,
      [
        '--expose-gc',
        '--max-old-space-size=512',
        '--import',
        'tsx',
        'scripts/stress.ts',
        '--pairs',
        '300',
        '--warmup',
        '0',
        '--quiet',
      ],
      { cwd: REPO_ROOT, stdin: 'ignore' },
    );
    expect(await child.exited).toBe(0);
    expect(child.stderr()).toMatch(
      /worker threads do not take --expose-gc, --max-old-space-size=512: left out of their flags/,
    );
    expect(child.stdout()).toMatch(/planned 300 {2}established 300 \(100\.00%\)/);
  });
});
