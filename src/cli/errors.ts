/** CLI outcomes and their exit codes. Messages always say what to do next; stack traces are never shown. */

export const EXIT_OK = 0;
/** The command ran and failed (unknown key, bucket already registered, I/O trouble). */
export const EXIT_FAILURE = 1;
/** The command line itself was wrong: fix the arguments and retry. */
export const EXIT_USAGE = 2;
/** Bad configuration (sysexits EX_CONFIG): fix the named environment variable. */
export const EXIT_CONFIG = 78;

export class UsageError extends Error {
  constructor(
    message: string,
    /** The help command to point at, e.g. "keygate keys create --help". */
    readonly helpCommand: string = 'keygate --help',
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export class CommandFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandFailure';
  }
}
