/**
 * `node bench/cpu-profile.ts FILE.cpuprofile [TOP]`: where a process spent its CPU, from a
 * `node --cpu-prof` profile, summed by package (or gateway folder, or Node module) and by
 * function (self time, as a share of the busy time). LAST=S keeps only the samples of the last
 * S seconds before the profile ended (less SKIP_END, 0.5 s), which is the load phase of a
 * `bench/ab.ts` round. To profile the gateway under the benchmark's load:
 *
 *   AB_SESSIONS=1000 AB_ROUNDS=1 AB_SECONDS=10 AB_ENV_B="NODE_OPTIONS=--cpu-prof,--cpu-prof-dir=/tmp/prof" node bench/ab.ts . .
 *   LAST=9 SKIP_END=1 node bench/cpu-profile.ts /tmp/prof/*.cpuprofile
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topText] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/cpu-profile.ts FILE.cpuprofile [TOP]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const top = Number(topText ?? 40);
const lastUs = Number(process.env.LAST ?? 0) * 1e6;
const skipEndUs = Number(process.env.SKIP_END ?? 0.5) * 1e6;
const from = lastUs > 0 ? profile.endTime - skipEndUs - lastUs : -Infinity;
const to = lastUs > 0 ? profile.endTime - skipEndUs : Infinity;

const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
let at = profile.startTime;
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i] ?? 0;
  at += delta;
  if (at >= from && at <= to) selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
});

const IDLE = new Set(['(idle)']);
const category = (url: string): string => {
  if (!url) return '(native: syscalls, V8)';
  const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  if (url.includes('/src/')) return `src/${(url.split('/src/')[1] as string).split('/')[0]}`;
  return url.startsWith('node:') ? url : url.split('/').slice(-2).join('/');
};
const byCategory = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
let idle = 0;
for (const [id, us] of selfUs) {
  const frame = (nodes.get(id) as ProfileNode).callFrame;
  total += us;
  if (IDLE.has(frame.functionName)) {
    idle += us;
    continue;
  }
  const special = frame.functionName.startsWith('(') ? frame.functionName : undefined;
  const cat = special ?? category(frame.url);
  byCategory.set(cat, (byCategory.get(cat) ?? 0) + us);
  const name = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
}
const busy = total - idle;
const share = (us: number): string => ((100 * us) / busy).toFixed(1).padStart(6);
console.log(`${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy`);
console.log('\nby package, gateway folder or Node module (% of busy):');
for (const [name, us] of [...byCategory].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${share(us)}  ${name}`);
console.log('\nby function, self time (% of busy):');
for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${share(us)}  ${name}`);
