/** The pure parts of lib/core/childProcess.ts: exit codes the shell's way, script command lines. */
import { describe, expect, it } from 'vitest';
import { END_WITH_PARENT_PRELOAD, exitCodeOf, scriptCommand } from '../../lib/core/childProcess.ts';

describe('child processes', () => {
  it('report an exit code, or 128 + the number of the signal that ended them', () => {
    expect(exitCodeOf(0, null)).toBe(0);
    expect(exitCodeOf(7, null)).toBe(7);
    expect(exitCodeOf(null, 'SIGINT')).toBe(130);
    expect(exitCodeOf(null, 'SIGTERM')).toBe(143);
    expect(exitCodeOf(null, 'SIGKILL')).toBe(137);
    expect(exitCodeOf(null, 'SIGHUP')).toBe(129);
  });

  it('run scripts with the tsx loader; a tied one also with the preload that ends it with its parent', () => {
    expect(scriptCommand('scripts/peer.ts', ['--help'])).toEqual([
      process.execPath,
      '--import',
      'tsx',
      'scripts/peer.ts',
      '--help',
    ]);
    expect(scriptCommand('scripts/peer.ts', [], true)).toEqual([
      process.execPath,
      '--import',
      'tsx',
      '--import',
      END_WITH_PARENT_PRELOAD,
      'scripts/peer.ts',
    ]);
    expect(END_WITH_PARENT_PRELOAD).toMatch(/^file:\/\/.*\/lib\/core\/endWithParentPreload\.ts$/);
  });
});
