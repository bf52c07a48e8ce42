/**
 * lib/core/outputFile.ts: outputs are checked and opened before any work, all or none, and written
 * through their own descriptor: a symlink stays a symlink, a character device stays a device, nothing
 * is renamed over a path the user gave.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT, ExitError } from '../../lib/core/errors.ts';
import { describeFileError, openOutputFiles } from '../../lib/core/outputFile.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simopen-output-file-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function refusal(specs: Parameters<typeof openOutputFiles>[0]): ExitError {
  try {
    for (const output of openOutputFiles(specs)) output.close();
  } catch (error) {
    expect(error).toBeInstanceOf(ExitError);
    expect((error as ExitError).exitCode).toBe(EXIT.usage);
    return error as ExitError;
  }
  throw new Error('not refused');
}

describe('openOutputFiles', () => {
  it('refuses with the option, the path and the reason', () => {
    expect(refusal([{ option: '--json', path: '/proc/simopen-x' }]).message).toMatch(
      /^--json: \/proc\/simopen-x cannot be written: ENOENT: no such file or directory$/,
    );
    expect(refusal([{ option: '--json', path: '/dev/full' }]).message).toMatch(
      /^--json: \/dev\/full cannot be written: ENOSPC: no space left on device$/,
    );
    expect(refusal([{ option: '--log', path: dir, append: true }]).message).toBe(
      `--log: ${dir} is a directory`,
    );
    expect(refusal([{ option: '--log', path: '/dev/null', regularBecause: 'it is read back' }]).message).toBe(
      '--log: /dev/null is a character device, not a regular file: it is read back',
    );
  });

  it('refuses a pipe for lines appended by several threads', () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(refusal([{ option: '--log', path: fifo, append: true }]).message).toMatch(/is a pipe \(FIFO\)/);
    expect(refusal([{ option: '--json', path: fifo }]).message).toMatch(/is a pipe nobody reads/);
  });

  it('is all or none: a file it created is removed when a later output is refused', () => {
    const fresh = path.join(dir, 'fresh.json');
    refusal([
      { option: '--json', path: fresh },
      { option: '--log', path: '/dev/full', append: true },
    ]);
    expect(fs.existsSync(fresh)).toBe(false);
    // An existing file is not truncated when another output is refused.
    const existing = path.join(dir, 'existing.json');
    fs.writeFileSync(existing, 'old');
    refusal([
      { option: '--json', path: existing },
      { option: '--log', path: '/dev/full', append: true },
    ]);
    expect(fs.readFileSync(existing, 'utf8')).toBe('old');
  });

  it('refuses two options naming one file, also through a link', () => {
    const file = path.join(dir, 'same.json');
    const link = path.join(dir, 'same-link.ndjson');
    fs.writeFileSync(file, 'old');
    fs.symlinkSync(file, link);
    expect(
      refusal([
        { option: '--json', path: file },
        { option: '--log', path: link, append: true },
      ]).message,
    ).toBe(`--json ${file} and --log ${link} are the same file`);
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
  });

  it('writes through a symlink and to a character device, replacing neither', () => {
    const target = path.join(dir, 'target.json');
    const link = path.join(dir, 'link.json');
    fs.writeFileSync(target, 'previous contents, longer than the new ones');
    fs.symlinkSync(target, link);
    const inode = fs.statSync(target).ino;
    const [json, devNull] = openOutputFiles([
      { option: '--json', path: link },
      { option: '--log', path: '/dev/null', append: true },
    ]);
    json?.write('{}\n');
    devNull?.write('line\n');
    json?.close();
    devNull?.close();
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.statSync(target).ino).toBe(inode);
    expect(fs.readFileSync(target, 'utf8')).toBe('{}\n');
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it('describes fs errors as code and text', () => {
    let error: unknown;
    try {
      fs.openSync('/proc/simopen-x', 'w');
    } catch (caught) {
      error = caught;
    }
    expect(describeFileError(error)).toBe('ENOENT: no such file or directory');
  });
});
