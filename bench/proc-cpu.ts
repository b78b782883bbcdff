// CPU time of the whole box by process and thread, read from /proc (Linux), for a benchmark to account
// what one leg cost across processes: this process's threads (its main JS thread apart), PostgreSQL's
// walsenders and other backends, the Kafka mock brokers, pg_recvlogical, and everything else.
// snapshot() before and after a leg; account(a, b) gives CPU seconds per category between them.
import { readdirSync, readFileSync } from 'node:fs';

const TICK = 100; // USER_HZ (getconf CLK_TCK) on Linux
/** Marks a category that is part of another (not summed into the total). */
const KERNEL = ': in the kernel';
/** BENCH_FAULTS=1: minor page faults (fresh pages touched) of this process's threads too, per category. */
const FAULTS = process.env.BENCH_FAULTS === '1';

/** Ticks (user + system) per "pid/tid", and what each thread is. */
export type CpuSnapshot = { at: number; threads: Map<string, { ticks: number; category: string; minflt?: number }> };

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The category of a thread: our main thread, our other threads by name, else by the owning process. */
function categorize(pid: number, tid: number, comm: string, cmdline: string): string {
  if (pid === process.pid) return tid === pid ? 'ducktail JS main thread' : `ducktail thread: ${comm.replace(/[0-9]+$/, '').trim()}`;
  if (/walsender/.test(cmdline)) return 'postgres walsender';
  if (/^postgres/.test(cmdline) || /\/postgres(\s|$)/.test(cmdline)) return 'postgres (other)';
  if (/kafka-mock/.test(cmdline)) return 'kafka-mock brokers';
  if (/pg_recvlogical/.test(cmdline)) return 'pg_recvlogical';
  return `other (${(cmdline.split(' ')[0] ?? '').split('/').pop() || 'kernel'})`;
}

export function snapshot(): CpuSnapshot {
  const threads = new Map<string, { ticks: number; category: string; minflt?: number }>();
  for (const p of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(p)) continue;
    const pid = Number(p);
    const cmdline = (read(`/proc/${p}/cmdline`) ?? '').replaceAll('\0', ' ');
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tids) {
      const stat = read(`/proc/${p}/task/${t}/stat`);
      if (!stat) continue;
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const f = stat.slice(close + 2).split(' '); // f[0] = state (field 3): utime is field 14, stime 15
      const ticks = Number(f[11]) + Number(f[12]);
      const category = categorize(pid, Number(t), comm, cmdline);
      // minflt is field 10 (f[7]).
      threads.set(`${p}/${t}`, FAULTS && pid === process.pid ? { ticks, category, minflt: Number(f[7]) } : { ticks, category });
      // The main thread's time in the kernel (page faults of fresh memory, sockets) apart as well; not added to the total.
      if (pid === process.pid && Number(t) === pid) threads.set(`${p}/${t}/sys`, { ticks: Number(f[12]), category: `${category}${KERNEL}` });
    }
  }
  return { at: performance.now(), threads };
}

/**
 * Snapshots every `everyMs`, keeping the last ticks seen of every thread, also of threads that ended
 * (pg_recvlogical and its walsender exit at the end of their leg): mark() then gives a snapshot that
 * still counts them (up to `everyMs` of their last CPU is lost).
 */
export class Sampler {
  private readonly seen = new Map<string, { ticks: number; category: string; minflt?: number }>();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(everyMs = 1000) {
    this.take();
    this.timer = setInterval(() => this.take(), everyMs);
  }

  private take(): void {
    for (const [k, t] of snapshot().threads) this.seen.set(k, t);
  }

  /** Samples every `everyMs` until `done` settles (a short-lived process: lose less of its last CPU). */
  async closely<T>(done: Promise<T>, everyMs = 100): Promise<T> {
    let settled = false;
    const p = done.finally(() => (settled = true));
    while (!settled) {
      this.take();
      await Promise.race([p.catch(() => {}), Bun.sleep(everyMs)]);
    }
    return p;
  }

  mark(): CpuSnapshot {
    this.take();
    return { at: performance.now(), threads: new Map(this.seen) };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** CPU seconds per category between two snapshots (threads that ended in between are not counted), and wall seconds. */
export function account(
  a: CpuSnapshot,
  b: CpuSnapshot,
): { wall: number; from: number; to: number; cpu: Map<string, number>; faults: Map<string, number> } {
  const cpu = new Map<string, number>();
  const faults = new Map<string, number>();
  for (const [k, t] of b.threads) {
    const d = (t.ticks - (a.threads.get(k)?.ticks ?? 0)) / TICK;
    if (d > 0) cpu.set(t.category, (cpu.get(t.category) ?? 0) + d);
    if (t.minflt !== undefined) {
      const f = t.minflt - (a.threads.get(k)?.minflt ?? 0);
      if (f > 0) faults.set(t.category, (faults.get(t.category) ?? 0) + f);
    }
  }
  return { wall: (b.at - a.at) / 1000, from: a.at, to: b.at, cpu, faults };
}

/** One line per category, largest first: CPU seconds and the share of one core over the wall time. */
export function describe(label: string, r: { wall: number; from: number; to: number; cpu: Map<string, number>; faults?: Map<string, number> }): string {
  const total = [...r.cpu].reduce((s, [c, x]) => (c.endsWith(KERNEL) ? s : s + x), 0);
  const lines = [...r.cpu]
    .sort((x, y) => y[1] - x[1])
    .map(([c, s]) => `  ${c}: ${s.toFixed(2)} CPU-s (${Math.round((100 * s) / r.wall)}%)${r.faults?.has(c) ? `, ${r.faults.get(c)} minor faults` : ''}`);
  return `${label}: performance.now() ${Math.round(r.from)}-${Math.round(r.to)} ms, wall ${r.wall.toFixed(2)} s, CPU ${total.toFixed(2)} s (${Math.round((100 * total) / r.wall)}% of one core)\n${lines.join('\n')}`;
}
