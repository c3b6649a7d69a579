#!/usr/bin/env node
// The benchmark chart in the docs (README's Performance section, docs/getting-started.md): a hand-written SVG
// drawn from the results of `bench/run.mjs` (bench/results/latest.json), in four panels:
//
//   1. throughput of 5,000 no-op units, 2 at a time: `checkpoint run` (journal on disk, and on tmpfs),
//      `xargs -P2` (nothing recorded: the floor) and GNU `parallel --joblog`, every unit a fresh
//      `bash -eo pipefail -c true` — units/s, higher is better;
//   2. 240 units of `sleep 0.05`, 4 at a time: `checkpoint run` and `xargs -P4` — units/s;
//   3. memory: peak RSS of the checkpoint process during a short attempt over a 10,000,000-unit range and over a
//      2,000,000-item list — MB, lower is better, with the 150 MB target;
//   4. resume planning on a checkpoint of 1,000,000 done units: `checkpoint status` and `checkpoint run
//      --dry-run`, contiguous and fragmented — seconds, lower is better, with the 1 s target.
//
// bench/run.mjs calls `writeBenchChart` at its end. Run on its own to redraw from saved results without
// benching again: `node bench/chart.mjs [results.json] [out.svg]` (defaults: bench/results/latest.json,
// docs/images/bench.svg). No dependencies; the same results always give the same bytes.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
export const DEFAULT_RESULTS = path.join(HERE, 'results', 'latest.json');
export const DEFAULT_CHART = path.join(REPO, 'docs', 'images', 'bench.svg');

const W = 760;
const LABEL_X = 250; // bars start here; labels end just left of it
const BAR_MAX = W - LABEL_X - 150; // room on the right for the value text
const BAR_H = 24;
const BAR_GAP = 10;
const COLORS = {
  checkpoint: '#2f6fde',
  checkpointAlt: '#8fb2ee',
  other: '#8c959f',
  target: '#cf222e',
  text: '#1f2328',
  muted: '#59636e',
  grid: '#d1d9e0',
};

const esc = (s) => String(s).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
const int = (n) => Math.round(n).toLocaleString('en-US');
const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;
const num = (n) => Number(n.toFixed(1));

/** A "nice" axis maximum (1, 2, 2.5 or 5 × 10^k) at or above `v`, with its tick step. */
function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(Math.max(v, 1e-9)));
  for (const m of [1, 2, 2.5, 5, 10])
    if (m * p >= v) return { max: m * p, step: (m * p) / (m === 2.5 ? 5 : 4) };
  return { max: 10 * p, step: 2.5 * p };
}

/**
 * One horizontal bar panel. `rows`: { label, sub?, value (undefined = not measured), text, color }.
 * Returns { svg: string[], height }.
 */
function panel({ y, title, note, rows, axisMax, tick, fmtTick, target }) {
  const out = [];
  out.push(
    `<text x="24" y="${y + 18}" font-size="15" font-weight="600" fill="${COLORS.text}">${esc(title)}</text>`,
  );
  out.push(`<text x="24" y="${y + 36}" font-size="12" fill="${COLORS.muted}">${esc(note)}</text>`);
  const top = y + 52;
  const plotH = rows.length * (BAR_H + BAR_GAP) - BAR_GAP;
  const x = (v) => LABEL_X + (Math.min(v, axisMax) / axisMax) * BAR_MAX;
  // Grid and tick labels.
  for (let t = 0; t <= axisMax + 1e-9; t += tick) {
    const gx = num(x(t));
    out.push(
      `<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${top + plotH + 4}" stroke="${COLORS.grid}" stroke-width="1"/>`,
    );
    out.push(
      `<text x="${gx}" y="${top + plotH + 18}" font-size="11" text-anchor="middle" fill="${COLORS.muted}">${esc(fmtTick(t))}</text>`,
    );
  }
  rows.forEach((r, i) => {
    const by = top + i * (BAR_H + BAR_GAP);
    const mid = by + BAR_H / 2;
    out.push(
      `<text x="${LABEL_X - 10}" y="${num(mid + (r.sub ? -2 : 4))}" font-size="13" text-anchor="end" fill="${COLORS.text}">${esc(r.label)}</text>`,
    );
    if (r.sub)
      out.push(
        `<text x="${LABEL_X - 10}" y="${num(mid + 11)}" font-size="10.5" text-anchor="end" fill="${COLORS.muted}">${esc(r.sub)}</text>`,
      );
    if (r.value === undefined) {
      out.push(
        `<text x="${LABEL_X + 6}" y="${num(mid + 4)}" font-size="12" font-style="italic" fill="${COLORS.muted}">${esc(r.text)}</text>`,
      );
      return;
    }
    const w = Math.max(1, x(r.value) - LABEL_X);
    out.push(`<rect x="${LABEL_X}" y="${by}" width="${num(w)}" height="${BAR_H}" rx="3" fill="${r.color}"/>`);
    out.push(
      `<text x="${num(LABEL_X + w + 8)}" y="${num(mid + 4)}" font-size="13" font-weight="600" fill="${COLORS.text}">${esc(r.text)}</text>`,
    );
  });
  if (target !== undefined && target.value <= axisMax) {
    const tx = num(x(target.value));
    out.push(
      `<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${top + plotH + 4}" stroke="${COLORS.target}" stroke-width="1.5" stroke-dasharray="5 3"/>`,
    );
    // Its legend sits at the right of the panel's title, clear of bars and value labels.
    out.push(
      `<line x1="${W - 150}" y1="${y + 14}" x2="${W - 126}" y2="${y + 14}" stroke="${COLORS.target}" stroke-width="1.5" stroke-dasharray="5 3"/>`,
      `<text x="${W - 120}" y="${y + 18}" font-size="12" fill="${COLORS.target}">${esc(target.label)}</text>`,
    );
  }
  return { svg: out, height: 52 + plotH + 30 };
}

/** The SVG text for one results document (the shape bench/run.mjs writes to latest.json). */
export function renderBenchChart(results) {
  const t = results.throughput ?? {};
  const units = results.units ?? 0;
  const par = results.parallel ?? 2;
  const rate = (k) => t[k]?.unitsPerSec ?? undefined;
  const missing = (k) => (t[k]?.skipped ? `skipped: ${t[k].skipped}` : 'not measured');
  const xargs = rate('xargs');
  const gnu = rate('parallel');
  const vs = (v) =>
    [xargs && `${(v / xargs).toFixed(2)}× xargs`, gnu && `${(v / gnu).toFixed(1)}× GNU parallel`]
      .filter(Boolean)
      .join(', ');
  const tRows = [
    {
      label: 'checkpoint run',
      sub: 'journal on disk',
      key: 'ckDisk',
      color: COLORS.checkpoint,
      extra: (v) => ` (${vs(v)})`,
    },
    {
      label: 'checkpoint run',
      sub: 'journal on tmpfs (fsync ~free)',
      key: 'ckTmpfs',
      color: COLORS.checkpointAlt,
      extra: () => '',
    },
    {
      label: `xargs -P${par}`,
      sub: 'nothing recorded: the floor',
      key: 'xargs',
      color: COLORS.other,
      extra: () => '',
    },
    {
      label: `GNU parallel -j${par}`,
      sub: '--joblog',
      key: 'parallel',
      color: COLORS.other,
      extra: () => '',
    },
  ].map((r) => {
    const v = rate(r.key);
    return {
      label: r.label,
      sub: r.sub,
      value: v,
      color: r.color,
      text: v === undefined ? missing(r.key) : `${int(v)}/s${r.extra(v)}`,
    };
  });
  const tMax = niceMax(Math.max(1, ...tRows.map((r) => r.value ?? 0)));

  const sl = results.sleep ?? {};
  const slRate = (k) => sl.rows?.[k]?.unitsPerSec ?? undefined;
  const slX = slRate('xargs');
  const sRows = [
    { label: 'checkpoint run', sub: 'journal on disk', key: 'ck', color: COLORS.checkpoint },
    { label: `xargs -P${sl.parallel ?? 4}`, sub: 'nothing recorded', key: 'xargs', color: COLORS.other },
  ].map((r) => {
    const v = slRate(r.key);
    return {
      label: r.label,
      sub: r.sub,
      value: v,
      color: r.color,
      text:
        v === undefined
          ? 'not measured'
          : `${int(v)}/s${r.key === 'ck' && slX ? ` (${(v / slX).toFixed(2)}× xargs)` : ''}`,
    };
  });
  const sMax = niceMax(Math.max(1, ...sRows.map((r) => r.value ?? 0)));

  const mem = results.memory ?? {};
  const mRows = [
    { key: 'range', label: '10,000,000-unit range', sub: 'size 1, units `true`' },
    { key: 'items', label: '2,000,000-item list', sub: 'items: { command: "seq 2000000" }' },
  ].map((r) => {
    const v = mem[r.key]?.peakMB ?? undefined;
    return {
      label: r.label,
      sub: r.sub,
      value: v,
      color: COLORS.checkpoint,
      text: v === undefined ? 'not measured' : `${v.toFixed(1)} MB`,
    };
  });
  const memTarget = results.targets?.memoryMB ?? 150;
  const mMax = niceMax(Math.max(memTarget * 1.1, ...mRows.map((r) => r.value ?? 0)));

  const variants = results.resume?.variants ?? {};
  const rRows = [];
  for (const [name, v] of Object.entries(variants)) {
    const sub =
      name === 'contiguous'
        ? `1 interval · checkpoint.json ${(v.snapshotBytes / 1e3).toFixed(1)} kB`
        : `${int(v.intervals)} intervals · checkpoint.json ${(v.snapshotBytes / 1e6).toFixed(1)} MB`;
    for (const cmd of ['status', 'run --dry-run']) {
      const ms = v[cmd]?.medianMs;
      rRows.push({
        label: `checkpoint ${cmd}, ${name}`,
        sub,
        value: ms,
        color: name === 'contiguous' ? COLORS.checkpoint : COLORS.checkpointAlt,
        text: ms === undefined ? 'not measured' : secs(ms),
      });
    }
  }
  const targetMs = (results.targets?.resumeSeconds ?? 1) * 1000;
  const rMax = niceMax(Math.max(targetMs * 1.1, ...rRows.map((r) => r.value ?? 0)));

  const parts = [];
  let y = 56;
  const p1 = panel({
    y,
    title: `Throughput: ${int(units)} no-op units, ${par} at a time`,
    note: 'units per second (median wall time; higher is better). Each unit runs bash -eo pipefail -c true.',
    rows: tRows,
    axisMax: tMax.max,
    tick: tMax.step,
    fmtTick: (v) => int(v),
  });
  parts.push(...p1.svg);
  y += p1.height + 14;
  if (sRows.some((r) => r.value !== undefined)) {
    const p = panel({
      y,
      title: `Sleeping units: ${int(sl.units ?? 240)} × sleep 0.05, ${sl.parallel ?? 4} at a time`,
      note: 'units per second (median wall time; higher is better). The same command for both.',
      rows: sRows,
      axisMax: sMax.max,
      tick: sMax.step,
      fmtTick: (v) => int(v),
    });
    parts.push(...p.svg);
    y += p.height + 14;
  }
  if (mRows.some((r) => r.value !== undefined)) {
    const p = panel({
      y,
      title: 'Memory: a short attempt over a huge space',
      note: 'peak RSS of the checkpoint process (VmHWM at exit; lower is better), attempt stopped by --time-budget',
      rows: mRows,
      axisMax: mMax.max,
      tick: mMax.step,
      fmtTick: (v) => `${int(v)} MB`,
      target: { value: memTarget, label: `target < ${memTarget} MB` },
    });
    parts.push(...p.svg);
    y += p.height + 14;
  }
  if (rRows.length > 0) {
    const p2 = panel({
      y,
      title: 'Resume planning: a checkpoint of 1,000,000 done units',
      note: 'seconds to read it and plan what is left (median wall time, Node start-up included; lower is better)',
      rows: rRows,
      axisMax: rMax.max,
      tick: rMax.step,
      fmtTick: (v) => `${num(v / 1000)} s`,
      target: { value: targetMs, label: `target < ${targetMs / 1000} s` },
    });
    parts.push(...p2.svg);
    y += p2.height;
  }
  const m = results.machine ?? {};
  const date = String(results.date ?? '').slice(0, 10);
  const footer = [
    `${m.cpus ?? '?'} × ${m.cpuModel ?? '?'}`,
    `Node ${m.node ?? '?'}`,
    results.gnuParallel ?? 'no GNU parallel',
    date,
    `commit ${results.commit ?? '?'}`,
    'npm run bench:engine',
  ].join(' · ');
  const H = y + 34;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="-apple-system, BlinkMacSystemFont, 'Segoe UI', 'Noto Sans', Helvetica, Arial, sans-serif">`,
    `<title>${esc(`checkpoint benchmark: ${int(units)} no-op units vs xargs and GNU parallel; sleeping units vs xargs; memory over huge spaces; resume planning on 1,000,000 done units`)}</title>`,
    `<rect width="${W}" height="${H}" rx="6" fill="#ffffff" stroke="${COLORS.grid}"/>`,
    `<text x="24" y="34" font-size="18" font-weight="700" fill="${COLORS.text}">checkpoint benchmark</text>`,
    ...parts,
    `<text x="24" y="${H - 14}" font-size="11" fill="${COLORS.muted}">${esc(footer)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}

/** Draws `results` into `out` (creating its folder). */
export function writeBenchChart(results, out = DEFAULT_CHART) {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, renderBenchChart(results));
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [from = DEFAULT_RESULTS, to = DEFAULT_CHART] = process.argv.slice(2);
  const out = writeBenchChart(JSON.parse(fs.readFileSync(from, 'utf8')), path.resolve(to));
  process.stderr.write(
    `[bench] wrote ${path.relative(process.cwd(), out)} from ${path.relative(process.cwd(), from)}\n`,
  );
}
