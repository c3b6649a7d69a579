#!/usr/bin/env node
// Makes the pictures in docs/images/ from real runs, so they can be made again after the product changes:
//
//   job-summary.png, job-summary.md   the job summary the built action (dist/main, dist/post) writes after two
//                                     runs of examples/migration-across-runs: the first stops at its time budget,
//                                     the second hits rows that fail in three chunks. The Markdown is rendered
//                                     with `marked` and GitHub's Markdown CSS (github-markdown-css), the Mermaid
//                                     timeline with Mermaid itself, and the page is shot with headless Chromium.
//   status.txt, status.svg            the live progress view of `checkpoint run` on the quickstart, on a real
//                                     terminal (a tmux pane), captured halfway with `tmux capture-pane -p -e`
//   checkpoint-status.txt, .svg       `checkpoint status` after that run was stopped with Ctrl-C
//   bench.svg                         the benchmark chart, redrawn from bench/results/latest.json (bench/chart.mjs;
//                                     `npm run bench` redraws it after measuring)
//
// Usage: `npm run docs:images` (all), or `npm run docs:images -- summary terminal bench` (some).
// Needs the built dist/ (`npm run build`), Node 24 (npm scripts run on the `node` devDependency), and from
// Debian: `apt-get install -y chromium tmux fonts-noto-color-emoji`. Mermaid is not a dependency of the
// project (it would add ~100 packages to every `npm ci`): the first run fetches its browser bundle with
// `npm pack mermaid@<MERMAID_VERSION>` into node_modules/.cache/docs-images/.

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { register } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const OUT = path.join(REPO, 'docs', 'images');
const CACHE = path.join(REPO, 'node_modules', '.cache', 'docs-images');
const MERMAID_VERSION = '12.3.0';

function log(msg) {
  process.stderr.write(`[docs:images] ${msg}\n`);
}

/** Thrown, not exited: the `finally` blocks (the tmux server) still run; the message is printed at the end. */
class Failure extends Error {}

function fail(msg) {
  throw new Failure(msg);
}

/** Before anything is started: nothing to clean up. */
function refuse(msg) {
  log(msg);
  process.exit(1);
}

const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function write(name, content) {
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, name), content);
  log(`wrote docs/images/${name}`);
}

// ------------------------------------------------------------------------------------------------ checks

const parts = process.argv.slice(2);
const want = (p) => parts.length === 0 || parts.includes(p);
for (const p of parts)
  if (!['summary', 'terminal', 'bench'].includes(p))
    refuse(`unknown part "${p}"; parts: summary, terminal, bench`);

if (Number(process.versions.node.split('.')[0]) < 24)
  refuse(
    `needs Node 24 (it runs the test harness's TypeScript), got ${process.version}: use \`npm run docs:images\``,
  );
for (const f of ['dist/cli/index.js', 'dist/main/index.js', 'dist/post/index.js'])
  if (!fs.existsSync(path.join(REPO, f))) refuse(`${f} is missing: run \`npm run build\` first`);
const CHROMIUM = ['chromium', 'chromium-browser', 'google-chrome'].map(which).find(Boolean);
if (want('summary') && !CHROMIUM)
  refuse('chromium not found: apt-get install -y chromium fonts-noto-color-emoji');
if (want('terminal') && !which('tmux')) refuse('tmux not found: apt-get install -y tmux');

const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'docs-images-'));
process.on('exit', () => {
  try {
    fs.rmSync(WORK, { recursive: true, force: true, maxRetries: 3 });
  } catch (err) {
    log(`could not remove ${WORK}: ${err.message}`);
  }
});

// ------------------------------------------------------------------------------------ 1. the job summary

/** Mermaid's self-contained browser bundle, fetched once with the npm client and kept in the cache. */
function mermaidBundle() {
  const file = path.join(CACHE, `mermaid-${MERMAID_VERSION}.min.js`);
  if (fs.existsSync(file)) return file;
  log(`fetching mermaid@${MERMAID_VERSION} (npm pack, once)`);
  const dir = fs.mkdtempSync(path.join(WORK, 'mermaid-'));
  const r = spawnSync('npm', ['pack', `mermaid@${MERMAID_VERSION}`, '--pack-destination', dir, '--silent'], {
    encoding: 'utf8',
  });
  const tgz = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !tgz)
    fail(`npm pack mermaid@${MERMAID_VERSION} failed: ${r.stderr.trim().slice(-400)}`);
  execFileSync('tar', ['-xzf', path.join(dir, tgz), '-C', dir, 'package/dist/mermaid.min.js']);
  fs.mkdirSync(CACHE, { recursive: true });
  fs.copyFileSync(path.join(dir, 'package', 'dist', 'mermaid.min.js'), file);
  return file;
}

/** The migration example with a stand-in that fails on rows in ids [25000000, 25300000): three chunks. */
function migrationWorkspace(ws) {
  const plan = path.join(ws, 'db', 'orders-backfill');
  fs.mkdirSync(plan, { recursive: true });
  const example = path.join(REPO, 'examples', 'migration-across-runs');
  fs.copyFileSync(path.join(example, 'checkpoint.yml'), path.join(plan, 'checkpoint.yml'));
  fs.copyFileSync(path.join(example, 'migrate.sh'), path.join(plan, 'migrate.orig.sh'));
  fs.chmodSync(path.join(plan, 'migrate.orig.sh'), 0o755);
  fs.writeFileSync(
    path.join(plan, 'migrate.sh'),
    `#!/usr/bin/env bash
# The example's migrate.sh, except that three chunks hold legacy rows whose total does not fit.
set -euo pipefail
if [ "$1" = backfill ] && [ "$2" -ge 25000000 ] && [ "$2" -lt 25300000 ]; then
  sleep "\${CHUNK_SECONDS:-0.1}"
  echo "UPDATE orders SET total_cents = round(total * 100) WHERE id >= $2 AND id < $3 AND total_cents IS NULL"
  echo "ERROR:  bigint out of range" >&2
  exit 1
fi
exec "$(dirname "$0")/migrate.orig.sh" "$@"
`,
    { mode: 0o755 },
  );
}

async function jobSummary() {
  register('../test/support/ts-resolve.mjs', import.meta.url);
  const { Job } = await import('../test/support/runner.ts');
  const { marked } = await import('marked');

  const ws = path.join(WORK, 'workspace');
  const temp = path.join(WORK, 'runner-temp');
  migrationWorkspace(ws);
  const inputs = (budget) => ({
    file: 'db/orders-backfill/checkpoint.yml',
    key: 'orders-backfill-2026',
    'time-budget': budget,
    // The workspace stays between the two jobs here, which is what `store: none` is for; a hosted runner
    // would restore the same checkpoint from the cache.
    store: 'none',
  });
  const job = (runId, budget) =>
    new Job({
      workspace: ws,
      temp,
      inputs: inputs(budget),
      workflow: 'Backfill orders',
      job: 'backfill',
      env: { GITHUB_RUN_ID: String(runId), GITHUB_RUN_ATTEMPT: '1', CHUNK_SECONDS: '0.2' },
    });

  log('job summary: run 1 of examples/migration-across-runs (stops at its 4 s time budget)');
  const first = await job(7001, '4s').run();
  if (!/units remain/.test(first.main.stdout + first.main.stderr))
    fail(`run 1 was expected to stop incomplete:\n${(first.main.stdout + first.main.stderr).slice(-2000)}`);
  log('job summary: run 2 (resumes; three chunks fail past their retries)');
  const second = await job(7002, '2m').run();
  const md = second.main.summary.trim();
  if (!md.includes('failed') || !md.includes('```mermaid'))
    fail(`run 2's summary is not the failed one with a timeline:\n${md.slice(0, 2000)}`);
  write('job-summary.md', `${md}\n`);

  // Markdown → HTML the way GitHub shows a job summary: GFM, raw <details>, Mermaid blocks as diagrams.
  const body = marked
    .parse(md, { gfm: true, async: false })
    .replace(
      /<pre><code class="language-mermaid">([\s\S]*?)<\/code><\/pre>/g,
      '<pre class="mermaid">$1</pre>',
    );
  const css = fs.readFileSync(
    path.join(REPO, 'node_modules', 'github-markdown-css', 'github-markdown-light.css'),
  );
  const page = path.join(WORK, 'summary.html');
  fs.writeFileSync(
    page,
    `<!doctype html>
<html><head><meta charset="utf-8"><title>rendering</title>
<style>${css}</style>
<style>
  html, body { margin: 0; background: #ffffff; }
  .frame { margin: 16px; border: 1px solid #d1d9e0; border-radius: 6px; }
  .frame > header { padding: 12px 16px; border-bottom: 1px solid #d1d9e0; background: #f6f8fa; border-radius: 6px 6px 0 0;
    font: 600 14px -apple-system, BlinkMacSystemFont, 'Segoe UI', 'Noto Sans', Helvetica, Arial, sans-serif; color: #1f2328; }
  .markdown-body { padding: 16px 24px 24px; }
  .markdown-body pre.mermaid { background: #ffffff; padding: 0; }
</style>
<script src="${pathToFileURL(mermaidBundle()).href}"></script>
</head><body>
<div class="frame"><header>backfill summary</header><article class="markdown-body">
${body}
</article></div>
<script>
  mermaid.initialize({ startOnLoad: false, theme: 'default' });
  mermaid.run({ querySelector: '.mermaid' }).finally(() => {
    document.title = 'height=' + Math.ceil(document.querySelector('.frame').getBoundingClientRect().bottom + 24);
  });
</script>
</body></html>
`,
  );
  const width = 1040;
  const chrome = (extra) =>
    spawnSync(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--hide-scrollbars',
        '--allow-file-access-from-files',
        '--virtual-time-budget=15000',
        ...extra,
        pathToFileURL(page).href,
      ],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
  // First pass: let the page (and Mermaid) render and report its height; second: shoot it at that height.
  const dom = chrome([`--window-size=${width},1000`, '--dump-dom']);
  const height = Number(/<title>height=(\d+)<\/title>/.exec(dom.stdout ?? '')?.[1]);
  if (!height) fail(`chromium did not render the page: ${(dom.stderr ?? '').slice(-1000)}`);
  const png = path.join(OUT, 'job-summary.png');
  fs.mkdirSync(OUT, { recursive: true });
  const shot = chrome([
    `--window-size=${width},${height}`,
    '--force-device-scale-factor=2',
    `--screenshot=${png}`,
  ]);
  if (shot.status !== 0 || !fs.existsSync(png))
    fail(`chromium screenshot failed: ${(shot.stderr ?? '').slice(-1000)}`);
  log(`wrote docs/images/job-summary.png (${width}×${height} CSS px at 2×)`);
}

// ------------------------------------------------------------------------------- 2. the terminal pictures

/** A terminal palette (GitHub's dark theme); index 0–15 for SGR 30–37 / 90–97. */
const PALETTE = [
  '#484f58',
  '#ff7b72',
  '#3fb950',
  '#d29922',
  '#58a6ff',
  '#bc8cff',
  '#39c5cf',
  '#b1bac4',
  '#6e7681',
  '#ffa198',
  '#56d364',
  '#e3b341',
  '#79c0ff',
  '#d2a8ff',
  '#56d4dd',
  '#ffffff',
];
const TERM_FG = '#e6edf3';
const TERM_BG = '#0d1117';

function xterm256(n) {
  if (n < 16) return PALETTE[n];
  if (n < 232) {
    const c = n - 16;
    const v = (x) => (x === 0 ? 0 : 55 + x * 40);
    const hex = (x) => v(x).toString(16).padStart(2, '0');
    return `#${hex(Math.floor(c / 36))}${hex(Math.floor(c / 6) % 6)}${hex(c % 6)}`;
  }
  const g = (8 + (n - 232) * 10).toString(16).padStart(2, '0');
  return `#${g}${g}${g}`;
}

/** One line of `capture-pane -e` output → runs of { text, fg, bg, bold, dim, italic, underline }. */
function parseAnsiLine(line, state) {
  const runs = [];
  // biome-ignore lint/suspicious/noControlCharactersInRegex: parsing terminal escape sequences
  const re = /\u001b\[([0-9;:]*)m|\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-_]/g;
  let last = 0;
  const push = (text) => {
    if (text) runs.push({ text, ...state });
  };
  for (let m = re.exec(line); m; m = re.exec(line)) {
    push(line.slice(last, m.index));
    last = re.lastIndex;
    if (m[1] === undefined) continue; // not SGR: cursor moves and the like, nothing to draw
    const codes = m[1] === '' ? [0] : m[1].split(/[;:]/).map(Number);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0)
        Object.assign(state, {
          fg: undefined,
          bg: undefined,
          bold: false,
          dim: false,
          italic: false,
          underline: false,
          inverse: false,
        });
      else if (c === 1) state.bold = true;
      else if (c === 2) state.dim = true;
      else if (c === 3) state.italic = true;
      else if (c === 4) state.underline = true;
      else if (c === 7) state.inverse = true;
      else if (c === 22) Object.assign(state, { bold: false, dim: false });
      else if (c === 23) state.italic = false;
      else if (c === 24) state.underline = false;
      else if (c === 27) state.inverse = false;
      else if (c >= 30 && c <= 37) state.fg = PALETTE[c - 30];
      else if (c >= 90 && c <= 97) state.fg = PALETTE[c - 90 + 8];
      else if (c >= 40 && c <= 47) state.bg = PALETTE[c - 40];
      else if (c >= 100 && c <= 107) state.bg = PALETTE[c - 100 + 8];
      else if (c === 39) state.fg = undefined;
      else if (c === 49) state.bg = undefined;
      else if (c === 38 || c === 48) {
        const key = c === 38 ? 'fg' : 'bg';
        if (codes[i + 1] === 5) {
          state[key] = xterm256(codes[i + 2]);
          i += 2;
        } else if (codes[i + 1] === 2) {
          const [r, g, b] = codes.slice(i + 2, i + 5).map((x) => x.toString(16).padStart(2, '0'));
          state[key] = `#${r}${g}${b}`;
          i += 4;
        }
      }
    }
  }
  push(line.slice(last));
  return runs;
}

const xmlEsc = (s) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** The lines of `capture-pane -p -e` as an SVG terminal window. Every character takes one cell. */
function ansiToSvg(lines, title) {
  const cw = 8.4; // DejaVu Sans Mono at 14px: 0.6em
  const lh = 19;
  const padX = 16;
  const top = 44;
  const cols = Math.max(40, ...lines.map((l) => [...stripAnsi(l)].length));
  const W = Math.ceil(padX * 2 + cols * cw);
  const H = top + lines.length * lh + 14;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`,
    `<title>${xmlEsc(title)}</title>`,
    `<rect width="${W}" height="${H}" rx="8" fill="${TERM_BG}"/>`,
    `<circle cx="20" cy="16" r="6" fill="#ff5f57"/><circle cx="40" cy="16" r="6" fill="#febc2e"/><circle cx="60" cy="16" r="6" fill="#28c840"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12" fill="#8b949e">${xmlEsc(title)}</text>`,
    `<g font-family="'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace" font-size="14">`,
  ];
  const state = {};
  lines.forEach((line, row) => {
    const y = top + row * lh;
    let col = 0;
    for (const r of parseAnsiLine(line, state)) {
      const n = [...r.text].length;
      const x = padX + col * cw;
      let fg = r.fg ?? TERM_FG;
      let bg = r.bg;
      if (r.inverse) [fg, bg] = [bg ?? TERM_BG, fg];
      if (bg)
        out.push(
          `<rect x="${x.toFixed(1)}" y="${y - 1}" width="${(n * cw).toFixed(1)}" height="${lh}" fill="${bg}"/>`,
        );
      // Each word at its own column: no reliance on how a renderer treats runs of spaces.
      const chars = [...r.text];
      for (let i = 0; i < n; ) {
        if (chars[i] === ' ') {
          i += 1;
          continue;
        }
        let j = i;
        while (j < n && chars[j] !== ' ') j += 1;
        const attrs = [
          `x="${(x + i * cw).toFixed(1)}"`,
          `y="${y + 14}"`,
          `fill="${fg}"`,
          `textLength="${((j - i) * cw).toFixed(1)}"`,
          'lengthAdjust="spacingAndGlyphs"',
          r.bold ? 'font-weight="bold"' : '',
          r.dim ? 'opacity="0.55"' : '',
          r.italic ? 'font-style="italic"' : '',
          r.underline ? 'text-decoration="underline"' : '',
        ].filter(Boolean);
        out.push(`<text ${attrs.join(' ')}>${xmlEsc(chars.slice(i, j).join(''))}</text>`);
        i = j;
      }
      col += n;
    }
  });
  out.push('</g>', '</svg>', '');
  return out.join('\n');
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing terminal escape sequences
const stripAnsi = (s) => s.replace(/\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-_]/g, '');

/** Drops trailing blank lines (the empty rest of the pane) and trailing spaces. */
function trimScreen(text) {
  const lines = text.replace(/\n$/, '').split('\n');
  while (lines.length > 0 && stripAnsi(lines[lines.length - 1]).trim() === '') lines.pop();
  return lines;
}

async function terminal() {
  // A server of its own, its socket in the scratch folder: removed with it, and no other tmux is touched.
  const sock = path.join(WORK, 'tmux.sock');
  const tmux = (...args) =>
    execFileSync('tmux', ['-S', sock, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  const ws = path.join(WORK, 'terminal');
  const bin = path.join(WORK, 'bin');
  fs.mkdirSync(path.join(ws, 'examples', 'quickstart'), { recursive: true });
  fs.mkdirSync(bin);
  fs.copyFileSync(
    path.join(REPO, 'examples', 'quickstart', 'checkpoint.yml'),
    path.join(ws, 'examples', 'quickstart', 'checkpoint.yml'),
  );
  // `checkpoint` on PATH is the committed build, as a user who linked it (README: Install) has it.
  fs.writeFileSync(
    path.join(bin, 'checkpoint'),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(REPO, 'dist', 'cli', 'index.js'))} "$@"\n`,
    { mode: 0o755 },
  );
  const shell = [
    'env',
    '-i',
    `HOME=${WORK}`,
    `PATH=${bin}:/usr/local/bin:/usr/bin:/bin`,
    'TERM=xterm-256color',
    'LANG=C.UTF-8',
    'HISTFILE=/dev/null',
    'PS1=$ ',
    'bash',
    '--norc',
    '--noprofile',
  ]
    .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
    .join(' ');
  const screen = (escapes) => tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', 'docs');
  const waitFor = async (re, what, ms = 30_000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (re.test(screen(false).trimEnd())) return;
      await sleep(40);
    }
    fail(`tmux: timed out waiting for ${what}; the screen:\n${screen(false)}`);
  };
  try {
    tmux(
      '-u',
      'new-session',
      '-d',
      '-s',
      'docs',
      '-x',
      '116',
      '-y',
      '18',
      '-c',
      path.join(ws, 'examples', 'quickstart'),
      shell,
    );
    await waitFor(/^\$$/, 'the prompt');

    log('terminal: checkpoint run in examples/quickstart, captured halfway through `process`');
    tmux('send-keys', '-t', 'docs', 'checkpoint run', 'Enter');
    await waitFor(/process\s.*\((3[5-9]|[45]\d|6[0-5])%\)/, '`process` between 35% and 65%');
    const live = trimScreen(screen(true));
    tmux('send-keys', '-t', 'docs', 'C-c');
    await waitFor(/resume with: checkpoint run[\s\S]*\n\$$/, 'the run to stop after Ctrl-C');

    log('terminal: checkpoint status');
    tmux('send-keys', '-t', 'docs', 'clear', 'Enter');
    await waitFor(/^\$$/, 'a clear screen');
    tmux('send-keys', '-t', 'docs', 'checkpoint status', 'Enter');
    await waitFor(/eta[\s\S]*report[^\n]*\n\$$/, 'the status table');
    const status = trimScreen(screen(true));

    write('status.txt', `${live.map((l) => stripAnsi(l).trimEnd()).join('\n')}\n`);
    write('status.svg', ansiToSvg(live, 'checkpoint run — the live view on a terminal'));
    write('checkpoint-status.txt', `${status.map((l) => stripAnsi(l).trimEnd()).join('\n')}\n`);
    write('checkpoint-status.svg', ansiToSvg(status, 'checkpoint status — after Ctrl-C'));
  } finally {
    spawnSync('tmux', ['-S', sock, 'kill-server']);
  }
}

// ----------------------------------------------------------------------------------------- 3. the chart

async function bench() {
  const { writeBenchChart, DEFAULT_RESULTS } = await import('../bench/chart.mjs');
  writeBenchChart(JSON.parse(fs.readFileSync(DEFAULT_RESULTS, 'utf8')));
  log('wrote docs/images/bench.svg (from bench/results/latest.json)');
}

try {
  if (want('bench')) await bench();
  if (want('terminal')) await terminal();
  if (want('summary')) await jobSummary();
} catch (err) {
  log(err instanceof Failure ? err.message : (err.stack ?? String(err)));
  process.exitCode = 1;
}
