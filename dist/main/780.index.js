export const id = 780;
export const ids = [780];
export const modules = {

/***/ 67780:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   statusCommand: () => (/* binding */ statusCommand)
/* harmony export */ });
/* harmony import */ var _engine_chunking_js__WEBPACK_IMPORTED_MODULE_8__ = __webpack_require__(93303);
/* harmony import */ var _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(2550);
/* harmony import */ var _journal_lock_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(17680);
/* harmony import */ var _journal_plan_check_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(90401);
/* harmony import */ var _plan_duration_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(72983);
/* harmony import */ var _plan_fingerprint_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(71731);
/* harmony import */ var _plan_space_js__WEBPACK_IMPORTED_MODULE_10__ = __webpack_require__(77037);
/* harmony import */ var _report_colors_js__WEBPACK_IMPORTED_MODULE_9__ = __webpack_require__(87688);
/* harmony import */ var _report_items_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(8134);
/* harmony import */ var _report_stats_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(68621);
/* harmony import */ var _context_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(14875);
// `checkpoint status [--run ID] [--json]`: where a run stands. The JSON shape is documented in
// docs/cli.md and kept stable: fields are only ever added.











/** Half-open like everywhere else: `[0, 400)`. */
function ranges(list, max = 6) {
    const parts = list.slice(0, max).map(([s, e]) => `[${s}, ${e})`);
    if (list.length > max)
        parts.push(`… ${list.length - max} more`);
    return parts.join(', ');
}
async function statusCommand(opts, io) {
    const plan = await (0,_context_js__WEBPACK_IMPORTED_MODULE_7__/* .optionalPlan */ .Yy)(opts);
    const root = (0,_context_js__WEBPACK_IMPORTED_MODULE_7__/* .rootOf */ .I5)(opts, plan);
    const id = await (0,_context_js__WEBPACK_IMPORTED_MODULE_7__/* .resolveRunId */ .nv)(root, opts.run);
    const ckpt = await _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_0__/* .Checkpoint */ .F9.read(root, id);
    // Only a live lease counts: a lock left by a killed run is not "locked".
    const inspected = await (0,_journal_lock_js__WEBPACK_IMPORTED_MODULE_1__/* .inspectLease */ .fk)(ckpt.dir).catch(() => undefined);
    const lease = inspected && !inspected.stale ? inspected.holder : undefined;
    // A plan with another name is not this checkpoint's plan: show the checkpoint alone.
    const samePlan = plan && plan.name === ckpt.state.planName ? plan : undefined;
    // A record that does not describe the plan's space although its step is unchanged is damage (DESIGN §4):
    // status says so, as `run` would, instead of counting forged work.
    if (samePlan)
        for (const step of samePlan.steps) {
            const rec = ckpt.state.steps.get(step.id);
            if (rec)
                (0,_journal_plan_check_js__WEBPACK_IMPORTED_MODULE_2__/* .checkAgainstPlan */ .$)(samePlan, step, rec, await (0,_plan_fingerprint_js__WEBPACK_IMPORTED_MODULE_4__/* .fingerprintStep */ .$)(samePlan, step));
        }
    // Chunks sized by time: the last chunk, the rate, and (with the plan) the target and the next size.
    const chunks = (id) => {
        const rec = ckpt.state.steps.get(id);
        const adaptive = samePlan?.steps.find((st) => st.id === id)?.batch?.adaptive;
        return rec?.adaptive ? (0,_engine_chunking_js__WEBPACK_IMPORTED_MODULE_8__/* .chunkInfo */ .cQ)(rec, adaptive) : null;
    };
    const frozen = await (0,_report_items_js__WEBPACK_IMPORTED_MODULE_5__/* .loadFrozenItems */ .NE)(ckpt, samePlan ? 'all' : 'named');
    // Units marked done by hand are named by their items too, with or without the plan.
    for (const [id, rec] of ckpt.state.steps) {
        if (!rec.manual || !rec.items || rec.items.count === 0 || frozen.has(id))
            continue;
        const list = await ckpt.readItems(id).catch(() => undefined);
        if (list)
            frozen.set(id, list);
    }
    const stats = (0,_report_stats_js__WEBPACK_IMPORTED_MODULE_6__/* .runStats */ .HN)(ckpt, samePlan, lease !== undefined, frozen);
    const state = ckpt.state;
    // A frozen list whose file or glob gives other items now, by name. Command sources are checked by
    // `explain` only: status runs no user command.
    const drift = new Map();
    for (const step of samePlan?.steps ?? []) {
        const rec = state.steps.get(step.id);
        const kind = step.batch?.space.kind === 'items' ? step.batch.space.source.kind : undefined;
        if (!samePlan || !rec?.items || (kind !== 'file' && kind !== 'glob'))
            continue;
        // A list that refreshes follows its source at every attempt: a difference now is not drift.
        if (step.batch?.space.kind === 'items' && step.batch.space.source.refresh)
            continue;
        const note = await (0,_report_items_js__WEBPACK_IMPORTED_MODULE_5__/* .itemsDriftNote */ .KX)(samePlan, step, frozen.get(step.id), rec.items, io.env, () => Promise.reject(new Error('status runs no items command')));
        if (note)
            drift.set(step.id, note);
    }
    // Done work that no unit ran (`checkpoint mark-done`), so it is told apart from work that ran.
    const manualOf = (id) => state.steps.get(id)?.manual ?? [];
    const itemsOf = (id, start, end) => (0,_report_items_js__WEBPACK_IMPORTED_MODULE_5__/* .unitItems */ .n1)(frozen.get(id), start, end);
    if (opts.json) {
        const doc = {
            format: 1,
            runId: stats.runId,
            plan: stats.plan,
            dir: ckpt.dir,
            complete: stats.complete,
            shard: state.shard ? { index: state.shard.index, total: state.shard.total } : null,
            createdAt: new Date(state.createdAt).toISOString(),
            updatedAt: new Date(state.updatedAt).toISOString(),
            units: {
                total: stats.unitsTotal,
                done: stats.unitsDone,
                failed: stats.unitsFailed,
                remaining: stats.unitsRemaining,
            },
            etaSeconds: stats.etaMs === undefined ? null : Math.round(stats.etaMs / 1000),
            lock: lease
                ? {
                    pid: lease.pid,
                    host: lease.host,
                    attempt: lease.attempt,
                    heartbeat: new Date(lease.heartbeat).toISOString(),
                }
                : null,
            attempts: state.attempts.map((a) => ({
                attempt: a.attempt,
                host: a.host,
                pid: a.pid,
                startedAt: new Date(a.startedAt).toISOString(),
                endedAt: a.endedAt === undefined ? null : new Date(a.endedAt).toISOString(),
                exit: a.exit ?? null,
                reason: a.reason ?? null,
                unitsDone: a.unitsDone,
            })),
            steps: stats.steps.map((s) => ({
                id: s.id,
                name: s.name,
                state: s.status,
                units: { total: s.unitsTotal, done: s.unitsDone, failed: s.unitsFailed, remaining: s.unitsRemaining },
                timeSeconds: Math.round(s.timeMs) / 1000,
                etaSeconds: s.etaMs === undefined ? null : Math.round(s.etaMs / 1000),
                done: s.done,
                failed: s.failed.map((f) => ({ ...f, items: f.items ?? null })),
                interrupted: s.interrupted,
                interruptedUnits: s.interruptedUnits.map((u) => ({ ...u, items: u.items ?? null })),
                items: s.items ?? null,
                gone: s.gone ?? null,
                itemsChanged: drift.get(s.id) ?? null,
                warnings: s.warnings,
                sharding: state.steps.get(s.id)?.sharding ?? null,
                chunks: chunks(s.id),
                approval: s.approval
                    ? s.approval.approved
                        ? {
                            required: true,
                            approved: true,
                            by: s.approval.by,
                            at: new Date(s.approval.at).toISOString(),
                        }
                        : { required: true, approved: false }
                    : null,
                throttle: s.throttle
                    ? {
                        held: s.throttle.held,
                        reason: s.throttle.reason ?? null,
                        times: s.throttle.count,
                        heldSeconds: Math.round(s.throttle.heldMs) / 1000,
                    }
                    : null,
                manual: manualOf(s.id).map((m) => ({
                    start: m.start,
                    end: m.end,
                    by: m.by ?? null,
                    at: new Date(m.at).toISOString(),
                    items: itemsOf(s.id, m.start, m.end) ?? null,
                })),
                outputs: s.outputs,
                completedAt: s.completedAt === undefined ? null : new Date(s.completedAt).toISOString(),
            })),
        };
        io.out.write(`${JSON.stringify(doc, null, 2)}\n`);
        return 0;
    }
    const c = (0,_report_colors_js__WEBPACK_IMPORTED_MODULE_9__/* .makeColors */ .Z)((0,_report_colors_js__WEBPACK_IMPORTED_MODULE_9__/* .colorEnabled */ .X)(io.out, io.env));
    const blocked = (0,_report_stats_js__WEBPACK_IMPORTED_MODULE_6__/* .blockedSteps */ .eD)(stats.steps);
    const stuck = stats.steps.some((s) => (0,_report_stats_js__WEBPACK_IMPORTED_MODULE_6__/* .etaUnknowable */ .fy)(s, false));
    const pct = stats.unitsTotal ? Math.floor((stats.unitsDone / stats.unitsTotal) * 100) : 100;
    io.out.write(`${c.bold(`run ${stats.runId}`)} · plan ${stats.plan}${state.shard ? ` · shard ${(0,_plan_space_js__WEBPACK_IMPORTED_MODULE_10__/* .shardLabel */ .$_)(state.shard)}` : ''} · ${stats.complete ? c.green('complete') : 'incomplete'} · ` +
        `${stats.unitsDone}/${stats.unitsTotal} units (${pct}%)` +
        `${stats.etaMs && !stats.complete && !stuck ? ` · ETA ${(0,_plan_duration_js__WEBPACK_IMPORTED_MODULE_3__/* .formatDuration */ .a)(stats.etaMs)}` : ''}\n`);
    io.out.write(`  ${(0,_context_js__WEBPACK_IMPORTED_MODULE_7__/* .shown */ .SP)(ckpt.dir)} · ${state.attempts.length} attempt(s)`);
    if (lease)
        io.out.write(` · ${c.yellow(`locked by pid ${lease.pid} on ${lease.host}`)}`);
    io.out.write('\n\n');
    const width = Math.max(4, ...stats.steps.map((s) => s.id.length));
    const mark = (s) => ({
        done: c.green('✓'),
        failed: c.red('✗'),
        running: c.cyan('›'),
        interrupted: c.yellow('!'),
        partial: c.yellow('…'),
        waiting: c.yellow('⏸'),
        pending: ' ',
    })[s.status];
    io.out.write(`  ${'step'.padEnd(width)}  ${'state'.padEnd(11)} ${'units'.padStart(15)}  ${'time'.padStart(7)}  eta\n`);
    for (const s of stats.steps) {
        const units = `${s.unitsDone}/${s.unitsTotal}${s.unitsFailed ? ` ✗${s.unitsFailed}` : ''}`;
        // No ETA where no pace can tell it (a failed step, an approval, what waits on them), as in the summary.
        const eta = s.status === 'done'
            ? ''
            : (0,_report_stats_js__WEBPACK_IMPORTED_MODULE_6__/* .etaUnknowable */ .fy)(s, blocked.has(s.id))
                ? '—'
                : s.etaMs === undefined
                    ? '?'
                    : (0,_plan_duration_js__WEBPACK_IMPORTED_MODULE_3__/* .formatDuration */ .a)(s.etaMs);
        io.out.write(`${mark(s)} ${s.id.padEnd(width)}  ${s.status.padEnd(11)} ${units.padStart(15)}  ${(0,_plan_duration_js__WEBPACK_IMPORTED_MODULE_3__/* .formatDuration */ .a)(s.timeMs).padStart(7)}  ${eta}\n`);
        const sharding = state.steps.get(s.id)?.sharding;
        if (sharding?.mode === 'first' && state.shard && state.shard.index > 0)
            io.out.write(`    shards: first: runs on shard 0 only\n`);
        else if (sharding?.mode === 'split' && s.status !== 'done') {
            const rec = state.steps.get(s.id);
            if (rec)
                io.out.write(`    this shard's part: [${rec.from}, ${rec.to}) of [${sharding.from}, ${sharding.to})\n`);
        }
        if (s.batch && s.status !== 'done' && s.done.length > 0)
            io.out.write(`    done: ${ranges(s.done)}\n`);
        for (const f of s.failed.slice(0, 5)) {
            const items = f.items && f.items.count > 0 ? ` ${(0,_report_items_js__WEBPACK_IMPORTED_MODULE_5__/* .describeItems */ .w9)(f.items)}` : '';
            io.out.write(`    ${c.red('failed')} [${f.start}, ${f.end})${items}: ${f.reason} after ${f.tries} tries\n`);
        }
        if (s.failed.length > 5)
            io.out.write(`    … ${s.failed.length - 5} more failed units (status --json lists all)\n`);
        if (s.interrupted.length > 0) {
            const named = s.interruptedUnits.filter((u) => u.items && u.items.count > 0);
            if (named.length === 0)
                io.out.write(`    interrupted: ${ranges(s.interrupted)}\n`);
            else {
                const parts = named
                    .slice(0, 6)
                    .map((u) => `[${u.start}, ${u.end}) ${u.items ? (0,_report_items_js__WEBPACK_IMPORTED_MODULE_5__/* .describeItems */ .w9)(u.items) : ''}`);
                if (named.length > 6)
                    parts.push(`… ${named.length - 6} more`);
                io.out.write(`    interrupted: ${parts.join('; ')}\n`);
            }
        }
        for (const line of manualLines(manualOf(s.id), s.batch, (a, b) => itemsOf(s.id, a, b)))
            io.out.write(`    ${line}\n`);
        for (const w of s.warnings)
            io.out.write(`    ${c.yellow('warning:')} ${w}\n`);
        if (s.gone)
            io.out.write(`    ${c.yellow('gone:')} ${describeGone(s.gone)}\n`);
        const changed = drift.get(s.id);
        if (changed)
            io.out.write(`    note: ${changed}\n`);
        const ch = chunks(s.id);
        if (ch)
            io.out.write(`    ${describeChunks(ch)}\n`);
        if (s.approval?.approved)
            io.out.write(`    approved by ${s.approval.by} at ${new Date(s.approval.at).toISOString()}\n`);
        else if (s.approval && s.status === 'waiting')
            io.out.write(`    ${c.yellow('waiting for approval')} (checkpoint approve ${s.id})\n`);
        else if (s.approval && s.status !== 'done')
            io.out.write(`    needs approval before it starts (checkpoint approve ${s.id})\n`);
        if (s.throttle && (s.throttle.held || s.throttle.count > 0)) {
            const t = s.throttle;
            io.out.write(`    ${t.held ? c.yellow('throttled') : 'throttle'}: held back ${t.count} time(s), ${(0,_plan_duration_js__WEBPACK_IMPORTED_MODULE_3__/* .formatDuration */ .a)(t.heldMs)} in all` +
                `${t.reason ? `; last: ${t.reason}` : ''}\n`);
        }
    }
    return 0;
}
/** `2 items (data/c.csv, data/d.csv) left the source before they ran; not run` (`refresh: true`). */
function describeGone(g) {
    const names = g.first.length > 0 ? ` (${(0,_report_items_js__WEBPACK_IMPORTED_MODULE_5__/* .nameItems */ .O1)(g.first, g.count)})` : ` ${ranges(g.ranges)}`;
    return `${g.count} item(s)${names} left the source before they ran; not run`;
}
/**
 * `marked done by hand by alice at 2026-…: [20, 30), [50, 60)`: one line per mark (who and when), its
 * ranges (with their items, for an item list); a plain step's line has no ranges.
 */
function manualLines(marks, batch, items) {
    const groups = [];
    for (const m of marks) {
        const last = groups[groups.length - 1];
        if (last && last.by === m.by && last.at === m.at)
            last.ranges.push([m.start, m.end]);
        else
            groups.push({ by: m.by, at: m.at, ranges: [[m.start, m.end]] });
    }
    const max = 5;
    const lines = groups.slice(0, max).map((g) => {
        const head = `marked done by hand${g.by !== undefined ? ` by ${g.by}` : ''} at ${new Date(g.at).toISOString()}`;
        if (!batch)
            return head;
        const parts = g.ranges.slice(0, 6).map(([s, e]) => {
            const u = items(s, e);
            return `[${s}, ${e})${u && u.count > 0 ? ` ${(0,_report_items_js__WEBPACK_IMPORTED_MODULE_5__/* .describeItems */ .w9)(u)}` : ''}`;
        });
        if (g.ranges.length > 6)
            parts.push(`… ${g.ranges.length - 6} more`);
        return `${head}: ${parts.join(', ')}`;
    });
    if (groups.length > max)
        lines.push(`… ${groups.length - max} more marks by hand (status --json lists all)`);
    return lines;
}
/** `chunks sized by time: last 2000 in 190ms (10526/s), next 2100, target 200ms, min 100, max 100000`. */
function describeChunks(ch) {
    const parts = [];
    if (ch.lastSize !== null)
        parts.push(`last ${ch.lastSize} in ${(0,_plan_duration_js__WEBPACK_IMPORTED_MODULE_3__/* .formatDuration */ .a)(ch.lastMs ?? 0)}${ch.ratePerSecond !== null ? ` (${ch.ratePerSecond}/s)` : ''}`);
    else
        parts.push('none done yet');
    if (ch.nextSize !== null)
        parts.push(`next ${ch.nextSize}`);
    if (ch.targetMs !== null)
        parts.push(`target ${(0,_plan_duration_js__WEBPACK_IMPORTED_MODULE_3__/* .formatDuration */ .a)(ch.targetMs)}`);
    parts.push(`min ${ch.min}`);
    if (ch.max !== null)
        parts.push(`max ${ch.max}`);
    return `chunks sized by time: ${parts.join(', ')}`;
}


/***/ })

};
