/** The errors that decide a script's exit code, and the codes every script shares. Leaf module. */

/** Exit codes shared by every script; scripts add their own above 2 and document them. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  interrupted: 130,
} as const;

/** Bad input from the user: printed as one line, exit 2, before any socket is opened. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** An error that carries the exit code the script should end with. */
export class ExitError extends Error {
  override name = 'ExitError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
