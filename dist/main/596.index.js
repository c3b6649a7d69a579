export const id = 596;
export const ids = [596];
export const modules = {

/***/ 68596:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  reportShards: () => (/* binding */ reportShards)
});

// UNUSED EXPORTS: matrixJobOf

// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __webpack_require__(51455);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __webpack_require__(76760);
// EXTERNAL MODULE: ./node_modules/@actions/core/lib/core.js + 7 modules
var core = __webpack_require__(33838);
// EXTERNAL MODULE: ./node_modules/yaml/dist/index.js
var dist = __webpack_require__(38815);
// EXTERNAL MODULE: ./src/journal/checkpoint.ts + 1 modules
var checkpoint = __webpack_require__(2550);
// EXTERNAL MODULE: ./src/report/items.ts
var items = __webpack_require__(8134);
// EXTERNAL MODULE: ./src/journal/intervals.ts
var intervals = __webpack_require__(84041);
// EXTERNAL MODULE: ./src/journal/state.ts
var state = __webpack_require__(49226);
// EXTERNAL MODULE: ./src/plan/duration.ts
var duration = __webpack_require__(72983);
// EXTERNAL MODULE: ./src/plan/space.ts
var space = __webpack_require__(77037);
// EXTERNAL MODULE: ./src/report/stats.ts
var report_stats = __webpack_require__(68621);
// EXTERNAL MODULE: ./src/report/summary.ts
var summary = __webpack_require__(57994);
;// CONCATENATED MODULE: ./src/report/shards.ts
// `checkpoint report` and the action's `command: report`: several shards' checkpoints gathered into one
// report. Per step and per shard: units done, failed and remaining, ETA and failed ranges; across shards: is
// the union of the done work exactly the whole, and was no range done on two shards. Gathering and rendering
// are pure; the callers read the checkpoints (from directories, or restored from the store) and the logs.







const MAX_LISTED = 100;
function units(total, done, failed) {
    return { total, done, failed, remaining: Math.max(0, total - done) };
}
function addUnits(a, b) {
    return units(a.total + b.total, a.done + b.done, a.failed + b.failed);
}
function fmt([s, e]) {
    return `[${s}, ${e})`;
}
function listRanges(list, max = 5) {
    const shown = list.slice(0, max).map(fmt);
    if (list.length > max)
        shown.push(`… ${list.length - max} more`);
    return shown.join(', ');
}
/** The pieces of [s, e) that `set` covers. */
function coveredPieces(set, s, e) {
    const out = [];
    let cur = s;
    for (const [gs, ge] of set.gaps(s, e)) {
        if (gs > cur)
            out.push([cur, gs]);
        cur = ge;
    }
    if (cur < e)
        out.push([cur, e]);
    return out;
}
function shardOf(ckpt) {
    return ckpt.state.shard;
}
/** How a step is shared: from the first shard that recorded it, else from the plan. */
function shapeOf(recs, step, total) {
    for (const rec of recs) {
        if (!rec)
            continue;
        const span = rec.sharding ? rec.sharding.to - rec.sharding.from : rec.to - rec.from;
        const batch = step
            ? step.batch !== undefined
            : rec.sharding?.mode === 'split' || rec.size > 1 || rec.items !== undefined || span > 1;
        if (rec.sharding)
            return {
                whole: [rec.sharding.from, rec.sharding.to],
                mode: rec.sharding.mode,
                size: rec.size,
                batch,
                ...(rec.sharding.cuts ? { cuts: rec.sharding.cuts } : {}),
            };
        // An unsharded run (N = 1): its space is the whole.
        return { whole: [rec.from, rec.to], mode: batch ? 'split' : 'every', size: rec.size, batch };
    }
    if (!step)
        return undefined;
    const mode = step.shards === 'first' && total > 1 ? 'first' : step.batch ? 'split' : 'every';
    const b = step.batch;
    if (!b)
        return { whole: [0, 1], mode, size: 1, batch: false };
    if (b.space.kind === 'range')
        return { whole: [b.space.from, b.space.to], mode, size: b.size, batch: true };
    if (b.space.source.kind === 'list')
        return { whole: [0, b.space.source.items.length], mode, size: b.size, batch: true };
    return { whole: null, mode, size: b.size, batch: true };
}
function aggregateState(cells, complete) {
    if (complete)
        return 'done';
    const states = cells.map((c) => c.state);
    if (states.includes('failed'))
        return 'failed';
    if (states.includes('running'))
        return 'running';
    if (states.includes('interrupted'))
        return 'interrupted';
    if (cells.some((c) => c.units.done > 0))
        return 'partial';
    if (states.every((s) => s === 'missing'))
        return 'missing';
    return 'pending';
}
/**
 * Gathers the shards' checkpoints into one report. Consistency errors (the report is then not complete):
 * checkpoints of different plans or shard counts, two checkpoints for one shard, a shard whose recorded part
 * is not its part of the step, work done outside a shard's part, a range done on two shards, item lists
 * that differ between shards.
 */
function gatherShards(o) {
    const errors = [];
    const warnings = [...(o.warnings ?? [])];
    const sources = o.sources;
    const names = [...new Set(sources.map((s) => s.ckpt.state.planName))];
    if (names.length > 1)
        errors.push(`the checkpoints belong to different plans (${sources.map((s) => `${s.source}: "${s.ckpt.state.planName}"`).join(', ')}); report the shards of one plan`);
    const planName = names[0] ?? o.plan?.name ?? '';
    const plan = o.plan && o.plan.name === planName ? o.plan : undefined;
    // N: given, else what the checkpoints recorded (an unsharded run is the one shard of 1).
    const totals = [...new Set(sources.map((s) => shardOf(s.ckpt)?.total ?? 1))];
    const unsharded = sources.filter((s) => shardOf(s.ckpt) === undefined);
    if (unsharded.length > 0 && (sources.length > 1 || (o.total !== undefined && o.total > 1)))
        errors.push(`${unsharded.map((s) => `${s.source} (run ${s.ckpt.runId})`).join(', ')} ${unsharded.length === 1 ? 'is' : 'are'} not sharded (run without --shard); report only the checkpoints of \`checkpoint run --shard I/N\` runs`);
    const total = o.total ?? Math.max(1, ...totals);
    const wrongTotal = sources.filter((s) => {
        const sh = shardOf(s.ckpt);
        return sh !== undefined && sh.total !== total;
    });
    if (wrongTotal.length > 0)
        errors.push(`the shard counts differ: ${sources.map((s) => `${s.source} is shard ${shardOf(s.ckpt) ? (0,space/* shardLabel */.$_)(shardOf(s.ckpt)) : '(none)'}`).join(', ')}; every shard must be run with the same N`);
    // Shards started from a merged checkpoint must all have started from the same one: their parts are cut
    // from what that merge left.
    const merges = [...new Set(sources.map((s) => s.ckpt.state.merge?.run ?? ''))];
    if (merges.length > 1)
        errors.push(`the shards started from different checkpoints (${sources.map((s) => `${s.source}: ${s.ckpt.state.merge ? `merge ${s.ckpt.state.merge.run}` : 'a fresh start'}`).join(', ')}); every shard of a matrix must start from the same merge (or none)`);
    const mergeInfo = sources.find((s) => s.ckpt.state.merge)?.ckpt.state.merge;
    const byIndex = new Map();
    for (const s of sources) {
        const sh = shardOf(s.ckpt) ?? { index: 0, total: 1 };
        if (sh.total !== total)
            continue;
        const prev = byIndex.get(sh.index);
        if (prev) {
            errors.push(`shard ${(0,space/* shardLabel */.$_)(sh)} was given twice (${prev.source}, run ${prev.ckpt.runId}, and ${s.source}, run ${s.ckpt.runId}); pass one checkpoint per shard`);
            continue;
        }
        byIndex.set(sh.index, s);
    }
    // Steps: the plan's, in its order; else every step any shard recorded, in first-seen order.
    const ids = plan ? plan.steps.map((s) => s.id) : [];
    if (!plan)
        for (const s of sources)
            for (const id of s.ckpt.state.steps.keys())
                if (!ids.includes(id))
                    ids.push(id);
    const stepById = new Map(plan?.steps.map((s) => [s.id, s]) ?? []);
    const steps = [];
    for (const id of ids) {
        const step = stepById.get(id);
        const recs = Array.from({ length: total }, (_, i) => byIndex.get(i)?.ckpt.state.steps.get(id));
        const shape = shapeOf(recs, step, total) ?? { whole: null, mode: 'split', size: 1, batch: false };
        const parallel = step?.batch ? (step.batch.order === 'sequential' ? 1 : step.batch.parallel) : 1;
        const cells = [];
        const union = new intervals/* IntervalSet */.m();
        let itemsHash;
        let definition;
        for (let i = 0; i < total; i++) {
            const rec = recs[i];
            const shard = { index: i, total };
            const part = shape.whole
                ? shape.cuts
                    ? (0,space/* recordedPart */.gL)({ from: shape.whole[0], to: shape.whole[1], mode: shape.mode, cuts: shape.cuts }, shape.mode, shard)
                    : (0,space/* partOf */.BU)(shape.whole[0], shape.whole[1], shape.mode, shard)
                : null;
            if (!rec) {
                const n = part ? Math.ceil((part[1] - part[0]) / shape.size) : 0;
                cells.push({
                    index: i,
                    state: byIndex.has(i) ? 'pending' : 'missing',
                    part,
                    units: units(n, 0, 0),
                    etaMs: n === 0 ? 0 : undefined,
                    done: [],
                    interrupted: [],
                    failed: [],
                });
                continue;
            }
            const where = `step ${id} on shard ${(0,space/* shardLabel */.$_)(shard)}`;
            const recWhole = rec.sharding ? [rec.sharding.from, rec.sharding.to] : [rec.from, rec.to];
            const recMode = rec.sharding?.mode ?? shape.mode;
            if (shape.whole &&
                (recWhole[0] !== shape.whole[0] ||
                    recWhole[1] !== shape.whole[1] ||
                    recMode !== shape.mode ||
                    rec.size !== shape.size)) {
                errors.push(`${where}: recorded the space ${fmt(recWhole)} (${recMode}, size ${rec.size}) but another shard recorded ${fmt(shape.whole)} (${shape.mode}, size ${shape.size}); the shards ran different plans — run them all from one commit (checkpoint run --new on each)`);
            }
            else if (shape.cuts &&
                (rec.sharding?.cuts?.length !== shape.cuts.length ||
                    rec.sharding.cuts.some((c, k) => c !== shape.cuts?.[k]))) {
                errors.push(`${where}: split what the merge left at ${JSON.stringify(rec.sharding?.cuts ?? null)}, but another shard at ${JSON.stringify(shape.cuts)}; every shard must start from the same merged checkpoint with the same N`);
            }
            else if (part && (rec.from !== part[0] || rec.to !== part[1])) {
                errors.push(`${where}: its part is ${fmt([rec.from, rec.to])}, but shard ${(0,space/* shardLabel */.$_)(shard)} of ${fmt(shape.whole)} is ${fmt(part)}; run that shard again with --new`);
            }
            if (!definition)
                definition = { hash: rec.fingerprint.hash, index: i };
            else if (definition.hash !== rec.fingerprint.hash)
                warnings.push(`step ${id}: shards ${definition.index} and ${i} ran different definitions of it (fingerprint ${definition.hash} and ${rec.fingerprint.hash}); run every shard from the same commit`);
            if (rec.items) {
                if (!itemsHash)
                    itemsHash = { sha: rec.items.sha256, index: i };
                else if (itemsHash.sha !== rec.items.sha256)
                    errors.push(`step ${id}: shards ${itemsHash.index} and ${i} froze different item lists (${rec.items.source}); an item index means a different item on each — make the list the same on every shard and start over with --new`);
            }
            const outside = [...rec.done.intervals()].flatMap(([s, e]) => {
                if (rec.to <= rec.from)
                    return [[s, e]];
                const out = [];
                if (s < rec.from)
                    out.push([s, Math.min(e, rec.from)]);
                if (e > rec.to)
                    out.push([Math.max(s, rec.to), e]);
                return out;
            });
            if (outside.length > 0)
                errors.push(`${where}: work outside its part ${fmt([rec.from, rec.to])} is recorded done: ${listRanges(outside)}`);
            const frozen = byIndex.get(i)?.frozen?.get(id);
            const stats = (0,report_stats/* stepStats */.Ch)(id, step?.name ?? id, rec, parallel, shape.batch, false, 0, frozen);
            // A sharded step that every shard runs is done on each; the others are shared out, never done twice.
            if (shape.mode !== 'every') {
                for (const [s, e] of rec.done.intervals()) {
                    const twice = coveredPieces(union, s, e);
                    if (twice.length > 0) {
                        const others = cells
                            .filter((c) => c.done.some(([cs, ce]) => twice.some(([ts, te]) => cs < te && ts < ce)))
                            .map((c) => c.index);
                        errors.push(`step ${id}: ${listRanges(twice)} done on shard ${i} and on shard ${others.join(', ') || '?'} (done twice)`);
                    }
                    union.add(s, e);
                }
            }
            cells.push({
                index: i,
                state: stats.status,
                part: [rec.from, rec.to],
                units: units(stats.unitsTotal, stats.unitsDone, stats.unitsFailed),
                etaMs: stats.etaMs,
                done: stats.done,
                interrupted: stats.interrupted,
                failed: stats.failed,
                stats,
            });
        }
        let complete;
        let remaining = [];
        if (shape.mode === 'every') {
            complete = recs.every((r) => r !== undefined && (0,state/* isStepComplete */.EX)(r));
        }
        else if (shape.whole) {
            // Split: the union of the shards' done work is the whole. First: shard 0 did it all (and recorded it).
            remaining = [...union.gaps(shape.whole[0], shape.whole[1])].slice(0, MAX_LISTED);
            complete = remaining.length === 0;
            if (shape.mode === 'first')
                complete = complete && recs[0] !== undefined && (0,state/* isStepComplete */.EX)(recs[0]);
        }
        else
            complete = false;
        const stepUnits = cells.reduce((a, c) => addUnits(a, c.units), units(0, 0, 0));
        const etas = cells.map((c) => c.etaMs);
        steps.push({
            id,
            name: step?.name ?? id,
            mode: shape.mode,
            batch: shape.batch,
            whole: shape.whole,
            state: aggregateState(cells, complete),
            complete,
            units: stepUnits,
            // Shards run at once: the step is done when its slowest shard is.
            etaMs: complete
                ? 0
                : etas.some((e) => e === undefined)
                    ? undefined
                    : Math.max(0, ...etas),
            remaining,
            shards: cells,
        });
    }
    const shards = [];
    for (let i = 0; i < total; i++) {
        const src = byIndex.get(i);
        const cells = steps.map((s) => s.shards[i]);
        const u = cells.reduce((a, c) => addUnits(a, c.units), units(0, 0, 0));
        const etas = cells.map((c) => c.etaMs);
        // Steps of one shard mostly run one after another: its ETA is the sum of theirs.
        const eta = etas.some((e) => e === undefined)
            ? undefined
            : etas.reduce((a, b) => a + (b ?? 0), 0);
        const complete = src !== undefined && cells.length > 0 && cells.every((c) => c.state === 'done');
        shards.push({
            index: i,
            present: src !== undefined,
            source: src?.source ?? null,
            runId: src?.ckpt.runId ?? null,
            complete,
            units: u,
            etaMs: complete ? 0 : eta,
            attempts: src?.ckpt.state.attempts.length ?? 0,
            updatedAt: src?.ckpt.state.updatedAt,
        });
    }
    const missing = shards.filter((s) => !s.present).map((s) => s.index);
    if (missing.length > 0 && sources.length > 0)
        warnings.push(`no checkpoint for shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${total}`).join(', ')}: ${missing.length > 1 ? 'their' : 'its'} work counts as remaining`);
    const allUnits = shards.reduce((a, s) => addUnits(a, s.units), units(0, 0, 0));
    const shardEtas = shards.map((s) => s.etaMs);
    const consistent = errors.length === 0;
    const complete = consistent && missing.length === 0 && steps.length > 0 && steps.every((s) => s.complete);
    return {
        plan: planName,
        ...(mergeInfo ? { merge: { run: mergeInfo.run, total: mergeInfo.total } } : {}),
        total,
        complete,
        consistent,
        errors,
        warnings,
        units: allUnits,
        etaMs: complete
            ? 0
            : shardEtas.some((e) => e === undefined)
                ? undefined
                : Math.max(0, ...shardEtas),
        shards,
        steps,
    };
}
/** Exit code of `checkpoint report`: 0 complete, 1 inconsistent or failed units, 75 incomplete. */
function reportExitCode(r) {
    if (!r.consistent || r.units.failed > 0)
        return 1;
    return r.complete ? 0 : 75;
}
// ---------------------------------------------------------------------------------------------------------
// JSON (docs/cli.md#report---json): fields are only ever added.
const seconds = (ms) => (ms === undefined ? null : Math.round(ms / 1000));
function reportJson(r) {
    return {
        format: 1,
        plan: r.plan,
        total: r.total,
        complete: r.complete,
        consistent: r.consistent,
        errors: r.errors,
        warnings: r.warnings,
        units: r.units,
        etaSeconds: seconds(r.etaMs),
        shards: r.shards.map((s) => ({
            index: s.index,
            shard: `${s.index}/${r.total}`,
            present: s.present,
            source: s.source,
            runId: s.runId,
            complete: s.complete,
            units: s.units,
            etaSeconds: seconds(s.etaMs),
            attempts: s.attempts,
            updatedAt: s.updatedAt === undefined ? null : new Date(s.updatedAt).toISOString(),
        })),
        steps: r.steps.map((s) => ({
            id: s.id,
            name: s.name,
            mode: s.mode,
            whole: s.whole,
            state: s.state,
            complete: s.complete,
            units: s.units,
            etaSeconds: seconds(s.etaMs),
            remaining: s.remaining,
            shards: s.shards.map((c) => ({
                index: c.index,
                state: c.state,
                part: c.part,
                units: c.units,
                etaSeconds: seconds(c.etaMs),
                done: c.done,
                interrupted: c.interrupted,
                failed: c.failed,
            })),
        })),
        merge: r.merge ?? null,
    };
}
// ---------------------------------------------------------------------------------------------------------
// Text (stdout of `checkpoint report`)
function pct(u) {
    return u.total === 0 ? 100 : Math.floor((u.done / u.total) * 100);
}
function outcomeWord(r) {
    if (!r.consistent)
        return 'inconsistent';
    if (r.complete)
        return 'complete';
    return r.units.failed > 0 ? 'failed' : 'incomplete';
}
function renderReportText(r) {
    const out = [];
    const eta = !r.complete && r.etaMs !== undefined ? ` · ETA ${(0,duration/* formatDuration */.a)(r.etaMs)}` : '';
    out.push(`plan ${r.plan} · ${(0,summary/* plural */.LS)(r.total, 'shard')} · ${outcomeWord(r)} · ${r.units.done}/${r.units.total} units (${pct(r.units)}%)${r.units.failed ? ` · ${r.units.failed} failed` : ''}${eta}`);
    if (r.merge)
        out.push(`started from merge ${r.merge.run} of ${(0,summary/* plural */.LS)(r.merge.total, 'shard')}: each shard's part is cut from what it left, and its merged work counts as done`);
    for (const e of r.errors)
        out.push(`error: ${e}`);
    for (const w of r.warnings)
        out.push(`warning: ${w}`);
    out.push('');
    for (const s of r.shards) {
        const label = `shard ${s.index}/${r.total}`;
        if (!s.present) {
            out.push(`  ${label}  missing     ${s.units.total} units remaining`);
            continue;
        }
        const state = s.complete ? 'complete' : s.units.failed > 0 ? 'failed' : 'incomplete';
        const sEta = !s.complete && s.etaMs !== undefined ? `  ETA ${(0,duration/* formatDuration */.a)(s.etaMs)}` : '';
        out.push(`  ${label}  ${state.padEnd(10)}  ${s.units.done}/${s.units.total} units${s.units.failed ? ` ✗${s.units.failed}` : ''}${sEta}  run ${s.runId} (${s.source})`);
    }
    out.push('');
    const width = Math.max(4, ...r.steps.map((s) => s.id.length));
    out.push(`  ${'step'.padEnd(width)}  ${'shards'.padEnd(6)}  ${'state'.padEnd(11)} ${'units'.padStart(13)}  eta`);
    for (const s of r.steps) {
        const mode = s.mode === 'split' ? 'split' : s.mode === 'first' ? 'first' : 'all';
        const u = `${s.units.done}/${s.units.total}${s.units.failed ? ` ✗${s.units.failed}` : ''}`;
        const e = s.complete ? '' : s.etaMs === undefined ? '?' : (0,duration/* formatDuration */.a)(s.etaMs);
        out.push(`  ${s.id.padEnd(width)}  ${mode.padEnd(6)}  ${s.state.padEnd(11)} ${u.padStart(13)}  ${e}`);
        if (s.complete && r.total > 1 && s.mode !== 'split')
            continue;
        for (const c of s.shards) {
            if (s.complete && c.failed.length === 0)
                continue;
            const cu = `${c.units.done}/${c.units.total}${c.units.failed ? ` ✗${c.units.failed}` : ''}`;
            const ce = c.state === 'done' ? '' : c.etaMs === undefined ? '?' : (0,duration/* formatDuration */.a)(c.etaMs);
            const part = c.part && s.mode === 'split' ? `part ${fmt(c.part)}` : '';
            out.push(`  ${' '.repeat(width)}  ${`${c.index}/${r.total}`.padEnd(6)}  ${c.state.padEnd(11)} ${cu.padStart(13)}  ${[ce, part].filter(Boolean).join('  ')}`.trimEnd());
            for (const f of (0,summary/* failedRanges */.iZ)({ id: s.id, failed: c.failed }).slice(0, 5))
                out.push(`  ${' '.repeat(width)}    failed ${fmt([f.start, f.end])}${f.items && f.items.count > 0 ? ` ${(0,items/* describeItems */.w9)(f.items)}` : ''}: ${f.reason} after ${(0,summary/* plural */.LS)(f.tries, 'try', 'tries')}`);
        }
        if (!s.complete && s.remaining.length > 0 && s.mode !== 'every')
            out.push(`  ${' '.repeat(width)}  not done on any shard: ${listRanges(s.remaining)}`);
    }
    return `${out.join('\n')}\n`;
}
// ---------------------------------------------------------------------------------------------------------
// Markdown (the job summary)
/** Log tails of the first unit of every failed range, per shard: `shard → logKey → tail`. */
async function readShardLogTails(r, sources) {
    const out = new Map();
    let budget = 50;
    for (const src of sources) {
        const index = src.ckpt.state.shard?.index ?? 0;
        if (r.shards[index]?.source !== src.source)
            continue;
        const steps = r.steps.flatMap((s) => {
            const stats = s.shards[index]?.stats;
            return stats && stats.failed.length > 0 ? [stats] : [];
        });
        if (steps.length === 0 || budget <= 0)
            continue;
        const stats = {
            runId: src.ckpt.runId,
            plan: r.plan,
            complete: false,
            unitsTotal: 0,
            unitsDone: 0,
            unitsFailed: 0,
            unitsRemaining: 0,
            etaMs: undefined,
            steps,
        };
        const tails = await (0,summary/* readLogTails */.my)(src.ckpt, stats, { maxLogs: budget });
        budget -= tails.size;
        out.set(index, tails);
    }
    return out;
}
const MD_LIMIT = 1_000_000;
function iconOf(state) {
    return state === 'missing' ? '❔' : summary/* STATE_ICON */.S7[state];
}
function renderReportMarkdown(r, opts = {}) {
    const maxBytes = opts.maxBytes ?? MD_LIMIT;
    const plan = (0,summary/* escapeMarkdown */.FV)(r.plan);
    const word = outcomeWord(r);
    const icon = word === 'complete' ? '✅' : word === 'incomplete' ? '⏸️' : '❌';
    const head = [`## ${icon} ${plan}: ${word} across ${(0,summary/* plural */.LS)(r.total, 'shard')}`, ''];
    const present = r.shards.filter((s) => s.present).length;
    const eta = !r.complete && r.etaMs !== undefined ? ` · ETA ${(0,duration/* formatDuration */.a)(r.etaMs)}` : '';
    head.push(`${r.units.done} of ${r.units.total} units done (${pct(r.units)}%)${r.units.failed ? `, ${r.units.failed} failed` : ''} · checkpoints of ${present} of ${r.total} shards${eta}.`);
    if (r.merge)
        head.push('', `Started from merge ${(0,summary/* inlineCode */.ti)(r.merge.run)} of ${(0,summary/* plural */.LS)(r.merge.total, 'shard')}: each shard’s part is cut from what it left.`);
    if (r.complete)
        head.push('', 'The union of the shards’ done work is the whole of every step, and no range was done twice.');
    if (r.errors.length > 0) {
        head.push('', '> [!CAUTION]', '> The shards do not add up:');
        for (const e of r.errors)
            head.push(`> - ${(0,summary/* escapeCell */.kq)(e)}`);
    }
    const warn = (0,summary/* warningBlock */.gV)(r.warnings);
    if (warn.length > 0)
        head.push('', ...warn);
    const shardRows = [
        '',
        '### Shards',
        '',
        '| Shard | Run | State | Done | Failed | Remaining | Attempts | ETA |',
        '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ];
    for (const s of r.shards) {
        const state = !s.present
            ? 'missing'
            : s.complete
                ? 'done'
                : s.units.failed > 0
                    ? 'failed'
                    : 'partial';
        const e = s.complete ? '—' : s.etaMs === undefined ? '?' : (0,duration/* formatDuration */.a)(s.etaMs);
        shardRows.push(`| ${s.index}/${r.total} | ${s.runId ? (0,summary/* inlineCode */.ti)(s.runId) : '—'} | ${iconOf(state)} ${state === 'done' ? 'complete' : state} | ${s.units.done} / ${s.units.total} | ${s.units.failed} | ${s.units.remaining} | ${s.attempts} | ${e} |`);
    }
    const stepRows = [
        '',
        '### Steps by shard',
        '',
        '| Step | Shard | State | Done | Failed | Remaining | ETA | Failed ranges |',
        '| --- | --- | --- | ---: | ---: | ---: | ---: | --- |',
    ];
    let used = Buffer.byteLength(head.join('\n')) + Buffer.byteLength(shardRows.join('\n')) + 2000;
    let left = 0;
    for (const s of r.steps) {
        const name = s.name !== s.id ? `${(0,summary/* escapeCell */.kq)(s.name)} (${(0,summary/* escapeCell */.kq)(s.id)})` : (0,summary/* escapeCell */.kq)(s.id);
        const mode = s.mode === 'split' ? 'split' : s.mode === 'first' ? 'shards: first' : 'every shard';
        const e = s.complete ? '—' : s.etaMs === undefined ? '?' : (0,duration/* formatDuration */.a)(s.etaMs);
        const rows = [
            `| **${name}** | ${mode} | ${iconOf(s.state)} ${s.state} | ${s.units.done} / ${s.units.total} | ${s.units.failed} | ${s.units.remaining} | ${e} | ${s.remaining.length && !s.complete && s.mode !== 'every' ? `not done anywhere: ${(0,summary/* escapeCell */.kq)(listRanges(s.remaining, 3))}` : ''} |`,
        ];
        for (const c of s.shards) {
            const ce = c.state === 'done' ? '—' : c.etaMs === undefined ? '?' : (0,duration/* formatDuration */.a)(c.etaMs);
            const failed = (0,summary/* failedRanges */.iZ)({ id: s.id, failed: c.failed });
            const fr = failed.length
                ? (0,summary/* escapeCell */.kq)(`${listRanges(failed.map((f) => [f.start, f.end]), 3)}: ${failed[0]?.reason ?? ''}`)
                : '';
            rows.push(`|  | ${c.index}/${r.total}${c.part ? ` ${(0,summary/* escapeCell */.kq)(fmt(c.part))}` : ''} | ${iconOf(c.state)} ${c.state} | ${c.units.done} / ${c.units.total} | ${c.units.failed} | ${c.units.remaining} | ${ce} | ${fr} |`);
        }
        const cost = Buffer.byteLength(rows.join('\n')) + 1;
        if (used + cost > maxBytes) {
            left += 1;
            continue;
        }
        used += cost;
        stepRows.push(...rows);
    }
    if (left > 0)
        stepRows.push('', `_${(0,summary/* plural */.LS)(left, 'more step')} not shown (summary size limit)._`);
    const sections = [];
    let cut = 0;
    for (const s of r.steps) {
        for (const c of s.shards) {
            if (!c.stats)
                continue;
            for (const range of (0,summary/* failedRanges */.iZ)(c.stats)) {
                const tail = opts.logs?.get(c.index)?.get((0,summary/* logKey */.Up)(s.id, range.index));
                const section = (0,summary/* failedSection */.H0)({ ...c.stats, id: `${s.id} · shard ${c.index}/${r.total}` }, range, tail, 20, sections.length === 0);
                const cost = Buffer.byteLength(section) + 2;
                if (sections.length >= MAX_LISTED || used + cost > maxBytes) {
                    cut += 1;
                    continue;
                }
                used += cost;
                sections.push(section);
            }
        }
    }
    const failedText = sections.length + cut > 0
        ? [
            '',
            '### Failed units',
            '',
            sections.join('\n\n'),
            ...(cut > 0
                ? [
                    '',
                    `_${(0,summary/* plural */.LS)(cut, 'more failed range')} not shown; \`checkpoint report --json\` lists them all._`,
                ]
                : []),
        ]
        : [];
    return `${[...head, ...shardRows, ...stepRows, ...failedText].join('\n')}\n`;
}

// EXTERNAL MODULE: ./src/session/merge.ts
var merge = __webpack_require__(61008);
// EXTERNAL MODULE: ./src/action/inputs.ts
var inputs = __webpack_require__(81729);
// EXTERNAL MODULE: ./src/action/keys.ts
var action_keys = __webpack_require__(86764);
// EXTERNAL MODULE: ./src/action/log-groups.ts
var log_groups = __webpack_require__(67941);
// EXTERNAL MODULE: ./src/action/store-factory.ts + 4 modules
var store_factory = __webpack_require__(50645);
// EXTERNAL MODULE: ./src/action/sync.ts
var action_sync = __webpack_require__(95627);
;// CONCATENATED MODULE: ./src/action/shard-report.ts
// `command: report` with `shard: N` (or `*/N`): the final job of a sharded matrix. Restores every shard's
// newest checkpoint from the store (one key per shard, the keys the matrix jobs saved under), gathers them
// into one report, writes it to the job summary and sets the outputs (`complete`: the union of the shards'
// done work is the whole of every step, and no range was done twice). When the shards add up, it also saves
// their done work merged into one checkpoint under `<key>-merged` (src/session/merge.ts): a later matrix of
// any size starts from it (main-run.ts restores it for a shard whose own key has no entry).













const KEY_FIX = 'set the same `key` in the matrix job and in this job (for example `key: backfill-$' +
    '{{ github.run_id }}`); the shards are then saved and found under `<key>-shardIofN`';
/**
 * Without an explicit `key`, the shards saved under `<workflow>-<job>-shardIofN-<run_id>`, where `<job>` is
 * the matrix job. A job cannot see another job's id, so it is read from the workflow file in the workspace
 * (GITHUB_WORKFLOW_REF): the job this one `needs` that has a matrix (or the only job it needs).
 */
async function matrixJobOf(cfg) {
    const why = (reason) => new inputs/* InputError */.dz(`input \`key\`: \`command: report\` without \`key\` looks for the checkpoints of the matrix job this job \`needs\`, but ${reason}; ${KEY_FIX}`);
    const ref = cfg.workflowRef;
    if (!ref)
        throw why('GITHUB_WORKFLOW_REF is not set, so the workflow file is unknown');
    const at = ref.lastIndexOf('@');
    const full = at >= 0 ? ref.slice(0, at) : ref;
    const prefix = `${cfg.repository}/`;
    const path = full.startsWith(prefix) ? full.slice(prefix.length) : full.replace(/^[^/]+\/[^/]+\//, '');
    let text;
    try {
        text = await (0,promises_.readFile)((0,external_node_path_.join)(cfg.workspace, path), 'utf8');
    }
    catch {
        throw why(`the workflow file ${path} is not in the workspace (check the repository out first)`);
    }
    let doc;
    try {
        doc = (0,dist/* parse */.qg)(text);
    }
    catch (err) {
        throw why(`the workflow file ${path} could not be read (${err.message})`);
    }
    const jobs = doc
        ?.jobs;
    const me = jobs?.[cfg.job];
    if (!jobs || !me)
        throw why(`${path} has no job "${cfg.job}"`);
    const needs = (typeof me.needs === 'string' ? [me.needs] : Array.isArray(me.needs) ? me.needs : []).filter((j) => typeof j === 'string');
    const matrix = needs.filter((j) => jobs[j]?.strategy?.matrix !== undefined);
    const pick = matrix.length > 0 ? matrix : needs;
    if (pick.length === 1)
        return pick[0];
    throw why(needs.length === 0
        ? `job "${cfg.job}" has no \`needs:\``
        : `job "${cfg.job}" needs ${needs.join(', ')} and it is not clear which one is the sharded matrix`);
}
/** Every output, for the shards as a whole. */
function setReportOutputs(report, keys) {
    const done = report.steps.filter((s) => s.complete).length;
    const outputs = {};
    // Shard 0 first: a `shards: first` step's outputs come from there; other shards add what it lacks.
    for (const s of report.steps) {
        for (const c of s.shards) {
            for (const [k, v] of Object.entries(c.stats?.outputs ?? {})) {
                outputs[s.id] ??= {};
                outputs[s.id][k] ??= v;
            }
        }
    }
    core.setOutput('complete', String(report.complete));
    core.setOutput('resumed', String(report.shards.some((s) => s.present)));
    core.setOutput('run-id', report.shards
        .map((s) => s.runId)
        .filter((id) => id !== null)
        .join(','));
    core.setOutput('steps-done', String(done));
    core.setOutput('steps-remaining', String(report.steps.length - done));
    core.setOutput('units-done', String(report.units.done));
    core.setOutput('units-remaining', String(report.units.remaining));
    core.setOutput('outputs', JSON.stringify(outputs));
    core.setOutput('checkpoint-key', keys.join(','));
}
/**
 * The shards' done work as one checkpoint under `<key>-merged`, for a matrix of another size to start from.
 * Shards that do not add up (or a shard without a checkpoint) are not merged: a warning says why, and the
 * merged entry saved before, if any, stays the newest.
 */
async function saveMerge(ctx, report, sources, key, store) {
    if (store.kind === 'none' || sources.length === 0)
        return;
    const problems = (0,merge/* mergeProblems */.nC)(report, sources);
    if (problems.length > 0) {
        core.warning(`the shards were not merged, so a matrix of another size cannot start from them yet (${problems.length} problem(s)): ${problems[0]}${problems.length > 1 ? ' …' : ''}`);
        return;
    }
    // The folder is this job's own output: a self-hosted runner may keep one from an earlier report.
    await (0,promises_.rm)((0,external_node_path_.join)(ctx.root, key), { recursive: true, force: true });
    const result = await (0,merge/* writeMerge */.Q5)(report, sources, ctx.root, key);
    for (const note of result.notes)
        core.info(`merge: ${note}`);
    const sync = (0,action_sync/* keySync */.L8)(ctx, store, key, log_groups/* coreLog */.uu);
    const seq = (await checkpoint/* Checkpoint */.F9.read(ctx.root, key)).state.seq;
    const done = result.steps.reduce((n, s) => n + s.done, 0);
    const units = result.steps.reduce((n, s) => n + s.units, 0);
    if (await sync.save(seq, 'merge of the shards'))
        core.info(`merged ${result.total} shards (${done}/${units} units done) and saved them under key ${key}: a matrix of any size with this key starts from there`);
}
/** The report job; failures end as a failed step with their message (never a throw). */
async function reportShards(ctx) {
    const total = ctx.inputs.shards;
    let keys;
    let merged;
    try {
        if (ctx.inputs.run !== undefined)
            throw new inputs/* InputError */.dz('input `run`: `command: report` gathers the shards of a plan file; give the matrix job’s `file` instead of `run`');
        const base = { workflow: ctx.cfg.workflow, job: ctx.cfg.job, runId: ctx.cfg.runId };
        const campaign = ctx.inputs.key !== undefined
            ? { ...base, key: ctx.inputs.key }
            : { ...base, job: await matrixJobOf(ctx.cfg) };
        keys = (0,action_keys/* shardKeys */.vM)(campaign, total);
        merged = (0,action_keys/* mergedKey */.Qr)(campaign);
    }
    catch (err) {
        if (!(err instanceof inputs/* InputError */.dz))
            throw err;
        core.setFailed(err.message);
        return;
    }
    const store = (0,store_factory/* makeStore */.y)(ctx.inputs, ctx.cfg);
    const sources = [];
    const warnings = [];
    // One at a time: a restore stages its bundle in one fixed folder of the workspace.
    for (const key of keys) {
        const sync = (0,action_sync/* keySync */.L8)(ctx, store, key, log_groups/* coreLog */.uu, { runOnly: true });
        const restored = await sync.restore();
        warnings.push(...sync.warnings);
        if (!(await checkpoint/* Checkpoint */.F9.exists(ctx.root, key)))
            continue;
        try {
            const ckpt = await checkpoint/* Checkpoint */.F9.read(ctx.root, key);
            sources.push({ source: restored.entry ?? key, ckpt, frozen: await (0,items/* loadFrozenItems */.NE)(ckpt) });
        }
        catch (err) {
            const message = `the checkpoint of ${key} could not be read: ${err.message}`;
            warnings.push(message);
            core.warning(message);
        }
    }
    const report = gatherShards({ sources, plan: ctx.plan, total, warnings });
    core.info(renderReportText(report).trimEnd());
    await saveMerge(ctx, report, sources, merged, store);
    setReportOutputs(report, keys);
    if (ctx.cfg.summaryFile) {
        const logs = await readShardLogTails(report, sources);
        await (0,promises_.appendFile)(ctx.cfg.summaryFile, `${renderReportMarkdown(report, { logs })}\n`);
    }
    for (const e of report.errors)
        core.error(e, { title: 'checkpoint report: the shards do not add up' });
    if (!report.consistent) {
        core.setFailed(`the shards do not add up (${report.errors.length} error(s)): ${report.errors[0]}${report.errors.length > 1 ? ' …' : ''}`);
    }
    else if (!report.complete) {
        core.info(`incomplete: ${report.units.remaining} units remain across ${report.total} shards (${report.shards.filter((s) => !s.present).length} without a checkpoint); complete=false`);
    }
    else {
        core.info(`complete: all ${report.units.total} units of ${report.total} shards are done`);
    }
}


/***/ })

};
