// Side-by-side table of BullMQ (bench.mjs JSON) and sunusav-redis (queue-bench OUT=… JSON).
// Usage: node compare.mjs --bullmq a.json [b.json …] --ours c.json [d.json …]
// Prints, per figure, the median over every run of each side, and ours/BullMQ ratios.
import { readFileSync } from 'node:fs';

const files = { bullmq: [], ours: [] };
let side = null;
for (const a of process.argv.slice(2)) {
  if (a === '--bullmq' || a === '--ours') side = a.slice(2);
  else if (side) files[side].push(a);
}
const pool = s => {
  const p = {};
  for (const f of files[s]) {
    for (const [k, v] of Object.entries(JSON.parse(readFileSync(f, 'utf8')).samples)) (p[k] ||= []).push(...v);
  }
  return p;
};
const med = xs => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const b = pool('bullmq');
const o = pool('ours');
const f0 = x => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const f1 = x => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = x => (Number.isFinite(x) ? x.toFixed(2) : '-');
// [BullMQ key, our key, label]: BullMQ has no prefetch, so our prefetch rows
// compare with its plain run at the same concurrency.
const rows = [
  ['add_sequential', 'add_sequential', 'enqueue one by one'],
  ['addBulk_batch1000', 'addBulk_batch1000', 'enqueue bulk x1000'],
];
for (const c of [1, 10, 50]) {
  rows.push([`process_c${c}`, `process_c${c}`, `process c=${c}`]);
  const pre = Object.keys(o)
    .map(k => k.match(new RegExp(`^process_c${c}_p(\\d+)$`)))
    .filter(Boolean)
    .sort((x, y) => Number(x[1]) - Number(y[1]));
  for (const m of pre) rows.push([`process_c${c}`, m[0], `process c=${c}, ours prefetch ${m[1]}`]);
}
console.log('| figure | BullMQ jobs/s | ours jobs/s | ratio | BullMQ Redis CPU µs/job | ours µs/job | ratio | BullMQ cmds/job | ours cmds/job | runs (B/o) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const [bk, ok, label] of rows) {
  const bs = b[bk] || [];
  const os = o[ok] || [];
  const br = med(bs.map(x => x.rate)), or = med(os.map(x => x.rate));
  const bc = med(bs.map(x => x.redisCpuUsPerJob)), oc = med(os.map(x => x.redisCpuUsPerJob));
  const bn = med(bs.map(x => x.redisCallsPerJob)), on = med(os.map(x => x.redisCallsPerJob));
  console.log(`| ${label} | ${f0(br)} | ${f0(or)} | ${f2(or / br)}× | ${f1(bc)} | ${f1(oc)} | ${f2(oc / bc)} | ${f1(bn)} | ${f1(on)} | ${bs.length}/${os.length} |`);
}
