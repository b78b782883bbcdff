/**
 * Crash points for the kill-between-steps tests: when TIERING_TEST_CRASH_AT names a step, the
 * process kills itself with SIGKILL there (no cleanup runs, as in a power cut). Unset in production.
 */
export function crashPoint(step: 'warm-written' | 'warm-before-commit' | 'cold-uploaded' | 'cold-committed' | 'vector-before-commit' | 'cold-vector-uploaded'): void {
  if (process.env.TIERING_TEST_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
}
