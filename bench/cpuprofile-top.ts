// Self and total (inclusive) samples per function of a .cpuprofile (bun --cpu-prof), within a window of
// milliseconds since the profile started (performance.now() of the profiled process, near enough).
// Usage: bun bench/cpuprofile-top.ts <file.cpuprofile> [fromMs] [toMs] [top=40]
import { readFileSync } from 'node:fs';

type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] };
const [file, fromArg, toArg, topArg] = process.argv.slice(2);
const p = JSON.parse(readFileSync(file!, 'utf8')) as { nodes: Node[]; startTime: number; samples: number[]; timeDeltas: number[] };
const from = Number(fromArg ?? 0) * 1000;
const to = Number(toArg ?? Number.POSITIVE_INFINITY) * 1000;
const top = Number(topArg ?? 40);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n: Node) => {
  const f = n.callFrame;
  const short = f.url.replace(/^.*\/(node_modules\/)?/, '').replace(/^file:\/\//, '');
  return `${f.functionName || '(anonymous)'} ${short ? `${f.url.includes('node_modules') ? f.url.replace(/^.*node_modules\//, '') : short}:${f.lineNumber + 1}` : ''}`.trim();
};
const self = new Map<string, number>();
const total = new Map<string, number>();
let t = 0;
let n = 0;
let idle = 0;
for (let i = 0; i < p.samples.length; i++) {
  t += p.timeDeltas[i]!;
  if (t < from || t > to) continue;
  const leaf = byId.get(p.samples[i]!)!;
  if (/^\((idle|program|garbage collector)\)$/.test(leaf.callFrame.functionName) && leaf.callFrame.functionName === '(idle)') {
    idle++;
    continue;
  }
  n++;
  self.set(name(leaf), (self.get(name(leaf)) ?? 0) + 1);
  const seen = new Set<string>();
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
    const k = name(byId.get(id)!);
    if (seen.has(k)) continue;
    seen.add(k);
    total.set(k, (total.get(k) ?? 0) + 1);
  }
}
console.log(`${n} samples in ${((Math.min(to, t) - from) / 1000).toFixed(0)} ms (${idle} idle)`);
const show = (label: string, m: Map<string, number>) => {
  console.log(`\n${label}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * v) / n).toFixed(1).padStart(5)}%  ${v.toString().padStart(6)}  ${k}`);
};
show('self', self);
show('total', total);

// BY=<function name>: which callers its self samples came from (two frames up).
if (process.env.BY) {
  const callers = new Map<string, number>();
  let t2 = 0;
  let m = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t2 += p.timeDeltas[i]!;
    if (t2 < from || t2 > to) continue;
    const leaf = byId.get(p.samples[i]!)!;
    if (leaf.callFrame.functionName !== process.env.BY) continue;
    m++;
    const up1 = parent.get(leaf.id);
    const up2 = up1 === undefined ? undefined : parent.get(up1);
    const k = [up1, up2].map((id) => (id === undefined ? '-' : name(byId.get(id)!))).join(' <- ');
    callers.set(k, (callers.get(k) ?? 0) + 1);
  }
  console.log(`\ncallers of ${process.env.BY} (${m} self samples)`);
  for (const [k, v] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`${v.toString().padStart(6)}  ${k}`);
}
