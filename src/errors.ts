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

/** Turns anything thrown into a one-line message. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
