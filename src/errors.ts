/** Base error of ducktail: a stable `code` for machines and a message that says what to do. */
export class AppError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The configuration file or environment is invalid; the process exits with status 2. */
export class ConfigError extends AppError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super('CONFIG_INVALID', `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/** A PostgreSQL prerequisite (wal_level, privilege, primary key, slot) is missing. */
export class PrerequisiteError extends AppError {}

/**
 * Tables must be copied again from the source (a column type the warehouse cannot convert in place,
 * a table that joined the publication). The source reconnects, copies them, then resumes streaming.
 */
export class RecopyNeeded extends AppError {
  constructor(
    readonly tables: string[],
    message: string,
  ) {
    super('RECOPY_NEEDED', message);
  }
}

/** Turns anything thrown into a one-line message. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
