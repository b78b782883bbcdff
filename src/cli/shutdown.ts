/**
 * Bounded shutdown for `run` and `demo`. The first SIGINT/SIGTERM asks for a clean stop (drain,
 * confirm what is committed, close); if that has not finished within the budget, or a second
 * signal comes, the process exits at once with a line saying what it abandoned. Abandoning is
 * safe: the slot is only confirmed up to what the warehouse committed, so the next start
 * replays the rest (src/source/README.md).
 */

/** How long a clean stop may take after the first signal (the promise to users is 10 s). */
export const SHUTDOWN_BUDGET_MS = 8_000;

/** Ctrl-C, kill, and the terminal closing (SIGHUP): each asks for the same bounded, clean stop. */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Exit status after a second Ctrl-C (128 + SIGINT, as a shell reports it). */
export const EXIT_INTERRUPTED = 130;
/** Exit status when the clean stop did not finish within the budget. */
export const EXIT_ABANDONED = 1;

export interface ShutdownOptions {
  /** Writes the "abandoned" line (stderr by default). */
  write?: (line: string) => void;
  budgetMs?: number;
  /** What is still in flight (pending changes, positions), added to the "abandoned" line. */
  describe?: () => string;
  /** Last, synchronous-ish cleanup before exiting abandoned (e.g. SIGQUIT the demo's PostgreSQL). */
  onAbandon?: () => void | Promise<void>;
  /** Ends the process; tests replace it. */
  exit?: (code: number) => void;
}

export interface Shutdown {
  /** Resolves on the first SIGINT, SIGTERM or SIGHUP (installed from creation, so a signal during startup counts). */
  requested: Promise<NodeJS.Signals>;
  /** Names the step now running; the "abandoned" line reports it. */
  step(label: string): void;
  /** The clean stop finished: the budget timer and the signal handlers go away. */
  done(): void;
}

/** Installs the SIGINT/SIGTERM handlers of a bounded shutdown. */
export function createShutdown(opts: ShutdownOptions = {}): Shutdown {
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const budgetMs = opts.budgetMs ?? SHUTDOWN_BUDGET_MS;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let step = 'starting';
  let timer: ReturnType<typeof setTimeout> | null = null;
  let signalled = false;
  let abandoning = false;
  let resolveRequested: (s: NodeJS.Signals) => void = () => {};
  const requested = new Promise<NodeJS.Signals>((r) => (resolveRequested = r));

  const abandon = async (why: string, code: number) => {
    if (abandoning) return exit(code); // a signal while abandoning: no more waiting
    abandoning = true;
    const detail = safe(opts.describe);
    write(
      `ducktail: ${why}; abandoned: ${step}${detail ? ` (${detail})` : ''}. ` +
        'Nothing uncommitted was confirmed to the replication slot: the next start replays it.',
    );
    try {
      await opts.onAbandon?.();
    } catch {
      // exiting anyway
    }
    exit(code);
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      void abandon(`second ${signal === 'SIGINT' ? 'Ctrl-C' : signal}: exiting now`, EXIT_INTERRUPTED);
      return;
    }
    signalled = true;
    timer = setTimeout(() => void abandon(`the stop did not finish within ${budgetMs / 1000} s`, EXIT_ABANDONED), budgetMs);
    resolveRequested(signal);
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);

  return {
    requested,
    step(label) {
      step = label;
    },
    done() {
      if (timer) clearTimeout(timer);
      for (const signal of SIGNALS) process.off(signal, onSignal);
    },
  };
}

function safe(f?: () => string): string {
  try {
    return f?.() ?? '';
  } catch {
    return '';
  }
}
