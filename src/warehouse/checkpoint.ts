/**
 * Checkpoints scheduled by the warehouse between applies. DuckDB's automatic checkpoint runs inside
 * the COMMIT of whichever batch passes its WAL threshold and holds that batch (and every change waiting
 * behind it) for the checkpoint's length, a few hundred ms. Here it is pushed out to a safety net and the
 * warehouse checkpoints itself: when the stream has been quiet for a moment, or once the WAL passes its
 * budget at a moment no apply is waiting, or at 1.25 times the budget whatever waits, so the WAL (replayed at
 * start-up) and the memory of not yet checkpointed data stay bounded.
 */
import { statSync } from 'node:fs';

export interface CheckpointOptions {
  /** The DuckDB file (its WAL is `<path>.wal`); ':memory:' never checkpoints. */
  path: string;
  /** WAL size that triggers a checkpoint between applies (bytes). */
  walBudget: number;
  /** After this long without an apply, a WAL above `idleMinimum` is checkpointed. */
  idleMs: number;
  idleMinimum: number;
}

/** What the scheduler reports (for /metrics and the benchmarks). */
export interface CheckpointStats {
  checkpoints: number;
  /** Time spent in scheduled checkpoints, summed (ms). */
  checkpointMs: number;
  /** Scheduled checkpoints that DuckDB refused (e.g. another connection's open write); retried later. */
  checkpointsRefused: number;
  walBytes: number;
}

/** DuckDB's automatic threshold once the warehouse schedules checkpoints itself: a safety net past the budget. */
export function automaticThreshold(walBudget: number): string {
  return `${Math.ceil((walBudget * 4) / 1048576)}MiB`;
}

export class CheckpointScheduler {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  /** A checkpoint is queued or running. */
  private busy = false;

  constructor(
    private readonly opts: CheckpointOptions,
    readonly stats: CheckpointStats,
    /** Runs CHECKPOINT on the writer between applies (the apply chain). */
    private readonly checkpoint: () => Promise<void>,
    /** Applies queued and not yet finished. */
    private readonly waiting: () => number,
  ) {}

  private wal(): number {
    if (this.opts.path === ':memory:') return 0;
    const size = statSync(`${this.opts.path}.wal`, { throwIfNoEntry: false })?.size ?? 0;
    this.stats.walBytes = size;
    return size;
  }

  /** Call after each apply settled (committed or failed), with that apply no longer counted as waiting. */
  afterApply(): void {
    if (this.closed) return;
    const wal = this.wal();
    const waiting = this.waiting();
    if (this.busy) return;
    if (wal >= 1.25 * this.opts.walBudget || (wal >= this.opts.walBudget && waiting === 0)) {
      void this.run();
      return;
    }
    // Quiet: checkpoint once nothing has been applied for idleMs.
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.closed && !this.busy && this.waiting() === 0 && this.wal() >= this.opts.idleMinimum) void this.run();
    }, this.opts.idleMs);
    this.timer.unref?.();
  }

  private async run(): Promise<void> {
    this.busy = true;
    const t0 = performance.now();
    try {
      await this.checkpoint();
      this.stats.checkpoints++;
      this.stats.checkpointMs += performance.now() - t0;
      this.wal();
    } catch {
      // Another connection's write in progress, or the warehouse closing: the next apply tries again.
      this.stats.checkpointsRefused++;
    } finally {
      this.busy = false;
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
