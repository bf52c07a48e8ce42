/**
 * Output files a script writes (--json, --log): checked and opened before any work, written through
 * the descriptor opened then. A path the user gave is never renamed over or replaced: a regular file is
 * truncated and written, a symlink is followed, a character device (/dev/null) is written to.
 */
import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  openSync,
  type Stats,
  statfsSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { EXIT, ExitError } from './errors.ts';

export interface OutputSpec {
  /** The option that named it ("--json"), for messages. */
  option: string;
  path: string;
  /** Several threads append lines: O_APPEND, and no pipe or socket (writes to them may interleave). */
  append?: boolean;
  /** Why it must be a regular file (it is read back), if it must. */
  regularBecause?: string;
}

/** "ENOSPC: no space left on device" from a Node fs error (without the syscall and path). */
export function describeFileError(error: unknown): string {
  const errno = error as NodeJS.ErrnoException;
  if (errno?.code && typeof errno.message === 'string') {
    const description = errno.message.replace(/^[A-Z0-9]+: /, '').replace(/, \w+(?: '.*')?$/, '');
    return `${errno.code}: ${description}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function kindOf(stat: Stats): string {
  if (stat.isFIFO()) return 'a pipe (FIFO)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isCharacterDevice()) return 'a character device';
  return 'not a regular file';
}

/** An output opened for writing. */
export class OutputFile {
  private fdOrNone: number | undefined;

  constructor(
    readonly option: string,
    readonly path: string,
    fd: number,
    /** A regular file (else a character device or a pipe). */
    readonly regular: boolean,
    /** We created it (it did not exist): removed again if the run never starts. */
    readonly created: boolean,
  ) {
    this.fdOrNone = fd;
  }

  get fd(): number {
    if (this.fdOrNone === undefined) throw new Error(`${this.option} ${this.path} is closed`);
    return this.fdOrNone;
  }

  /** Writes all of `text` through the descriptor (a regular file: from where it was truncated). */
  write(text: string): void {
    const bytes = Buffer.from(text);
    let written = 0;
    while (written < bytes.length) written += writeSync(this.fd, bytes, written, bytes.length - written);
  }

  /** Empties a regular file (its old contents are not this run's). */
  truncate(): void {
    if (this.regular) ftruncateSync(this.fd, 0);
  }

  close(): void {
    if (this.fdOrNone !== undefined) closeSync(this.fdOrNone);
    this.fdOrNone = undefined;
  }
}

function openOne(spec: OutputSpec): OutputFile {
  const { option, path } = spec;
  const refuse = (why: string) => new ExitError(`${option}: ${path} ${why}`, EXIT.usage);
  let stat: Stats | undefined;
  try {
    stat = statSync(path, { throwIfNoEntry: false });
  } catch (error) {
    throw refuse(`cannot be written: ${describeFileError(error)}`);
  }
  if (stat?.isDirectory()) throw refuse('is a directory');
  if (stat && !stat.isFile()) {
    if (spec.regularBecause) throw refuse(`is ${kindOf(stat)}, not a regular file: ${spec.regularBecause}`);
    if (stat.isBlockDevice() || stat.isSocket()) throw refuse(`is ${kindOf(stat)}; give a file`);
    if (spec.append && stat.isFIFO())
      throw refuse(`is ${kindOf(stat)}: lines from several threads could interleave in it; give a file`);
  }
  const regular = stat === undefined || stat.isFile();
  let flags = stat === undefined ? constants.O_CREAT | constants.O_EXCL : 0;
  // A regular file is read back (torn-line repair, --trace annotation); a FIFO must not block us.
  flags |= regular ? constants.O_RDWR : constants.O_WRONLY;
  if (spec.append) flags |= constants.O_APPEND;
  if (stat?.isFIFO()) flags |= constants.O_NONBLOCK;
  let fd: number;
  try {
    fd = openSync(path, flags, 0o666);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENXIO') throw refuse('is a pipe nobody reads');
    throw refuse(`cannot be written: ${describeFileError(error)}`);
  }
  const output = new OutputFile(option, path, fd, regular, stat === undefined);
  try {
    if (stat?.isFIFO()) {
      // Somebody reads it: reopen blocking, so a full pipe waits instead of failing with EAGAIN.
      output.close();
      const blocking = new OutputFile(
        option,
        path,
        openSync(path, flags & ~constants.O_NONBLOCK),
        false,
        false,
      );
      return probe(blocking, refuse);
    }
    return probe(output, refuse);
  } catch (error) {
    output.close();
    if (output.created) unlinkSync(path);
    throw error;
  }
}

/** Is there room? A regular file: free blocks on its file system. Anything else: one newline written (/dev/full refuses). */
function probe(output: OutputFile, refuse: (why: string) => Error): OutputFile {
  try {
    if (output.regular) {
      const fs = statfsSync(output.path);
      const free = process.getuid?.() === 0 ? fs.bfree : fs.bavail;
      if (free === 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    } else {
      output.write('\n');
    }
  } catch (error) {
    output.close();
    throw refuse(`cannot be written: ${describeFileError(error)}`);
  }
  return output;
}

/**
 * Checks and opens every output: all or none (on any problem the files this call created are removed
 * and an ExitError with EXIT.usage names the option, the path and the reason). Two options naming one regular file
 * are refused. Existing regular files are truncated only once all are open.
 */
export function openOutputFiles(specs: OutputSpec[]): OutputFile[] {
  const opened: OutputFile[] = [];
  try {
    for (const spec of specs) opened.push(openOne(spec));
    for (let i = 0; i < opened.length; i += 1)
      for (let j = i + 1; j < opened.length; j += 1) {
        const [x, y] = [opened[i] as OutputFile, opened[j] as OutputFile];
        const [sx, sy] = [fstatSync(x.fd), fstatSync(y.fd)];
        if (x.regular && y.regular && sx.dev === sy.dev && sx.ino === sy.ino)
          throw new ExitError(
            `${x.option} ${x.path} and ${y.option} ${y.path} are the same file`,
            EXIT.usage,
          );
      }
  } catch (error) {
    for (const output of opened) {
      output.close();
      if (output.created) unlinkSync(output.path);
    }
    throw error;
  }
  for (const output of opened) output.truncate();
  return opened;
}
