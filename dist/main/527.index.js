export const id = 527;
export const ids = [527];
export const modules = {

/***/ 44527:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  approveInRun: () => (/* binding */ approveInRun),
  checkApprovable: () => (/* binding */ checkApprovable),
  resetCommand: () => (/* binding */ resetCommand),
  rollbackCommand: () => (/* binding */ rollbackCommand)
});

// UNUSED EXPORTS: approvalIds, approveCommand, defaultApprover, markDoneCommand, rollbackOrder

// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __webpack_require__(51455);
// EXTERNAL MODULE: ./src/engine/env.ts
var env = __webpack_require__(98725);
// EXTERNAL MODULE: ./src/engine/prepare.ts + 1 modules
var engine_prepare = __webpack_require__(45268);
// EXTERNAL MODULE: ./src/exec/process.ts + 1 modules
var process = __webpack_require__(67879);
// EXTERNAL MODULE: ./src/journal/checkpoint.ts + 1 modules
var checkpoint = __webpack_require__(2550);
// EXTERNAL MODULE: ./src/journal/fsutil.ts
var fsutil = __webpack_require__(91268);
// EXTERNAL MODULE: ./src/journal/journal-file.ts + 1 modules
var journal_file = __webpack_require__(97162);
// EXTERNAL MODULE: ./src/journal/lock.ts
var lock = __webpack_require__(17680);
// EXTERNAL MODULE: ./src/journal/snapshot.ts
var snapshot = __webpack_require__(58123);
// EXTERNAL MODULE: ./src/journal/state.ts
var journal_state = __webpack_require__(49226);
// EXTERNAL MODULE: ./src/session/context.ts
var context = __webpack_require__(14875);
// EXTERNAL MODULE: ./src/journal/intervals.ts
var intervals = __webpack_require__(84041);
// EXTERNAL MODULE: ./src/report/items.ts
var report_items = __webpack_require__(8134);
;// CONCATENATED MODULE: ./src/session/units.ts
// Unit-level intervention (DESIGN §5): `mark-done STEP --unit N.. | --item NAME..`, `reset STEP --unit ..`
// and the action's `reset: STEP:UNIT` / `STEP:ITEM`. Turns what the user named into whole units of the
// step's space as its record (or, before the step first ran, the plan) defines it, or a usage error that
// names the step, the value and the fix. Nothing here writes: the caller records what comes back.




const UNIT_RE = /^(\d+)(?:(?:-|\.\.)(\d+))?$/;
const UNIT_EXAMPLE = '`--unit 3`, `--unit 3,5` or `--unit 3-7` (also `3..7`; both ends included)';
/** `3`, `3,5`, `3-7`, `3..7` (inclusive) as index pairs; undefined when the text is not that. */
function parseUnitText(text) {
    const out = [];
    for (const part of text.split(',')) {
        const m = UNIT_RE.exec(part.trim());
        if (!m)
            return undefined;
        const a = Number(m[1]);
        const b = m[2] === undefined ? a : Number(m[2]);
        if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a)
            return undefined;
        out.push([a, b]);
    }
    return out.length > 0 ? out : undefined;
}
/**
 * The checks that need only the plan (before the lease is taken): one step, a batch step, and for
 * `--unit`, index syntax; `--item` only on an item list.
 */
function units_checkUnitSelection(plan, cmd, steps, sel, where) {
    if (steps.length !== 1) {
        throw new context/* UsageError */.eb(`${where}: name exactly one step (the units are that step's), got ${steps.length === 0 ? 'none' : steps.join(', ')}; e.g. \`checkpoint ${cmd} ${plan.steps.find((s) => s.batch)?.id ?? 'STEP'} --unit 3\``);
    }
    const id = steps[0];
    const step = plan.steps.find((s) => s.id === id);
    if (!step)
        return; // checkSteps names it
    if (!step.batch) {
        throw new context/* UsageError */.eb(`${where}: step "${id}" is not a batch step, so it has no units; ${cmd === 'reset' ? 'reset' : 'mark'} the whole step${cmd === 'reset' ? '' : ' done'} with ${where.startsWith('input') ? `\`reset: ${id}\`` : `\`checkpoint ${cmd} ${id}\``}`);
    }
    if (sel.items && step.batch.space.kind === 'range') {
        throw new context/* UsageError */.eb(`${where}: step "${id}" is a range step ([${step.batch.space.from}, ${step.batch.space.to}) in chunks of ${step.batch.size}), not an item list; name its units by chunk index instead, e.g. \`checkpoint ${cmd} ${id} --unit 0\``);
    }
    for (const u of sel.units ?? []) {
        if (!parseUnitText(u))
            throw new context/* UsageError */.eb(`${where}: "${u}" is not a unit index of step "${id}"; give ${UNIT_EXAMPLE}`);
    }
    if (step.batch.space.kind === 'range') {
        for (const x of sel.either ?? []) {
            if (!parseUnitText(x))
                throw new context/* UsageError */.eb(`${where}: "${id}:${x}": step "${id}" is a range step, so what follows the colon is a chunk index: \`${id}:3\`, \`${id}:3-5\``);
        }
    }
}
/**
 * Resolves the selection against the checkpoint (read, not yet open for writing): errors leave it as it
 * was. A step without a record is prepared from the plan (its item list expanded) so its units exist.
 */
async function units_resolveUnits(plan, ckpt, cmd, id, sel, where, env) {
    const step = plan.steps.find((s) => s.id === id);
    const rec = ckpt.state.steps.get(id);
    // What a run would do with the step now: a record it would replace holds marks the next run drops.
    const prep = await (0,engine_prepare/* prepare */.iA)(plan, ckpt.state, { env, expand: rec === undefined });
    const init = prep.events.find((e) => e.type === 'step-init' && e.step === id);
    if (rec && init) {
        throw new context/* UsageError */.eb(`${where}: the record of step "${id}" is out of date (${init.reason}), so the next run starts the step afresh and would not keep unit marks; run it first (\`checkpoint run\`), or ${cmd === 'reset' ? 'reset' : 'mark done'} the whole step (\`checkpoint ${cmd} ${id}\`)`);
    }
    const space = rec ?? init;
    const isList = step.batch?.space.kind === 'items';
    const total = Math.max(0, Math.ceil((space.to - space.from) / space.size));
    const part = space.sharding?.mode === 'split' ? " (this shard's part)" : '';
    const spaceText = `${total} chunk(s) of ${space.size} over [${space.from}, ${space.to})${part}`;
    if (total === 0) {
        throw new context/* UsageError */.eb(`${where}: step "${id}" has no units (${spaceText}${isList ? '; its item list is empty' : ''}); there is nothing to ${cmd}`);
    }
    // The frozen list: the record's (checked against its checksum), or the one the step would be made with.
    const items = isList ? (rec ? await ckpt.readItems(id) : prep.items.get(id)) : undefined;
    const cells = new intervals/* IntervalSet */.m();
    const addIndices = (text, shownAs) => {
        for (const [a, b] of parseUnitText(text) ?? []) {
            if (b >= total) {
                throw new context/* UsageError */.eb(`${where}: step "${id}" has units 0 to ${total - 1} (${spaceText}), so ${shownAs} is outside it; give an index from 0 to ${total - 1} (\`checkpoint status\` shows the step's done and failed ranges)`);
            }
            cells.add(a, b + 1);
        }
    };
    const positions = items ? itemPositions(items) : undefined;
    const addItem = (name, shownAs) => {
        const at = positions?.get(name);
        if (!at)
            return false;
        const here = at.filter((i) => i >= space.from && i < space.to);
        if (here.length === 0) {
            throw new context/* UsageError */.eb(`${where}: item ${shownAs} of step "${id}" is in another shard's part (item ${at[0]}; this shard's part is [${space.from}, ${space.to})); name it in that shard's run`);
        }
        for (const i of here) {
            const cell = Math.floor((i - space.from) / space.size);
            cells.add(cell, cell + 1);
        }
        return true;
    };
    const unknownItem = (shownAs) => {
        const list = items ?? [];
        throw new context/* UsageError */.eb(`${where}: no item ${shownAs} in the item list of step "${id}" (${list.length} items${rec?.items ? `, ${rec.items.source}` : ''}: ${(0,report_items/* nameItems */.O1)(list, list.length)}); give a name as the list holds it (\`checkpoint status --json\` names the items of failed units), or \`checkpoint reset ${id}\` to expand the list again`);
    };
    for (const u of sel.units ?? [])
        addIndices(u, `"${u}"`);
    for (const name of sel.items ?? [])
        if (!addItem(name, JSON.stringify(name)))
            unknownItem(JSON.stringify(name));
    for (const x of sel.either ?? []) {
        const shownAs = `"${id}:${x}"`;
        if (addItem(x, shownAs))
            continue;
        if (parseUnitText(x))
            addIndices(x, shownAs);
        else
            unknownItem(shownAs);
    }
    const ranges = [];
    for (const [a, b] of cells.intervals()) {
        const s = space.from + a * space.size;
        const e = Math.min(space.to, space.from + b * space.size);
        const last = ranges[ranges.length - 1];
        if (last && last[1] === s)
            last[1] = e;
        else
            ranges.push([s, e]);
    }
    const target = {
        step,
        space: { from: space.from, to: space.to, size: space.size },
        ranges,
        indices: cells.toString(),
    };
    if (items)
        target.items = items;
    if (!rec && init) {
        const list = prep.items.get(id);
        target.init = list ? { event: init, items: list } : { event: init };
    }
    return target;
}
function itemPositions(items) {
    const out = new Map();
    items.forEach((item, i) => {
        const at = out.get(item);
        if (at)
            at.push(i);
        else
            out.set(item, [i]);
    });
    return out;
}
/** `unit 3` / `units 3, 5-7`, with the items of an item list: `unit 0 (data/a.csv)`. */
function units_describeTarget(t) {
    const several = /[,-]/.test(t.indices);
    const shownRanges = t.ranges.slice(0, 3).map(([s, e]) => `[${s}, ${e})`);
    if (t.ranges.length > 3)
        shownRanges.push(`… ${t.ranges.length - 3} more`);
    const head = `${several ? 'units' : 'unit'} ${t.indices} ${shownRanges.join(', ')}`;
    if (!t.items)
        return head;
    const names = [];
    let count = 0;
    for (const [s, e] of t.ranges) {
        count += Math.min(e, t.items.length) - s;
        if (names.length < 3)
            names.push(...t.items.slice(s, Math.min(e, s + 3)));
    }
    return `${head} (${(0,report_items/* nameItems */.O1)(names, count)})`;
}

;// CONCATENATED MODULE: ./src/session/manage.ts
// Commands that change a checkpoint by hand: reset, mark-done, rollback, approve. Each takes the run's lease
// first.













function checkSteps(plan, ids, flag) {
    for (const id of ids) {
        if (!plan.steps.some((s) => s.id === id)) {
            throw new context/* UsageError */.eb(`${flag}: no step "${id}" in ${(0,context/* shown */.SP)(plan.file)}; steps: ${plan.steps.map((s) => s.id).join(', ')}`);
        }
    }
}
/** The checkpoint cannot be read because it is damaged (not because a newer program wrote it). */
function isDamage(err) {
    return (err instanceof checkpoint/* CheckpointCorruptError */.qd ||
        err instanceof journal_file/* JournalCorruptError */.Zi ||
        (err instanceof snapshot/* SnapshotError */.JC && !(err instanceof snapshot/* SnapshotVersionError */.lJ)));
}
async function withRun(opts, fn) {
    const plan = await (0,context/* requirePlan */.VH)(opts);
    opts.check?.(plan);
    const root = (0,context/* rootOf */.I5)(opts, plan);
    const id = await (0,context/* resolveRunId */.nv)(root, opts.run);
    const lease = await (0,lock/* acquireLease */.ZZ)(`${root}/${id}`, { runId: id, attempt: 0 });
    try {
        let ckpt;
        let startedOver;
        try {
            ckpt = await checkpoint/* Checkpoint */.F9.read(root, id);
        }
        catch (err) {
            if (!opts.startOverIfDamaged || !isDamage(err))
                throw err;
            const fresh = await checkpoint/* Checkpoint */.F9.startOver(root, id, plan.name);
            ckpt = fresh.ckpt;
            startedOver = { damage: err.message, kept: fresh.kept };
        }
        await opts.inspect?.(plan, ckpt);
        await ckpt.openForWrite({ lease });
        try {
            return await fn(plan, ckpt, startedOver);
        }
        finally {
            await ckpt.compact();
            await ckpt.close();
        }
    }
    finally {
        await lease.release();
    }
}
function selectionOf(opts) {
    if (opts.unit !== undefined && opts.item !== undefined)
        throw new context/* UsageError */.eb('--unit and --item: give one of them (units by chunk index, or by the items they hold)');
    if (opts.unit !== undefined)
        return { units: opts.unit };
    if (opts.item !== undefined)
        return { items: opts.item };
    if (opts.either !== undefined)
        return { either: opts.either };
    return undefined;
}
/** How errors name what was given: `reset --unit`, `mark-done --item`, the action's ``input `reset` ``. */
function labelOf(cmd, sel) {
    return sel.units ? `${cmd} --unit` : sel.items ? `${cmd} --item` : 'input `reset`';
}
function byOf(opts, io) {
    if (opts.by !== undefined && opts.by.trim() === '')
        throw new context/* UsageError */.eb('--by: expected a name, e.g. `--by alice`');
    return opts.by?.trim() || defaultApprover(io.env);
}
/**
 * A step made pending whole (its record, marker, frozen list and state folder dropped), as `reset STEP`
 * does; `dependent`: it is reset because a step it depends on was. False when it had nothing to reset.
 */
async function resetWhole(ckpt, id, dependent, by, io) {
    const forget = () => ckpt.record({ type: 'reset', step: id, failedOnly: false, forget: true, reason: 'checkpoint reset', by });
    const rec = ckpt.state.steps.get(id);
    // No record but an approval (given before the step was first prepared): the reset takes it back.
    if (!rec && (0,journal_state/* approvalOf */.xf)(ckpt.state, id)) {
        await forget();
        io.out.write(`reset ${id}: its approval is taken back\n`);
        return true;
    }
    if (!rec)
        return false;
    const approved = (0,journal_state/* approvalOf */.xf)(ckpt.state, id) !== undefined;
    await forget();
    await ckpt.clearStepFiles(id);
    await (0,promises_.rm)(ckpt.stateDir(id), { recursive: true, force: true });
    io.out.write(`reset ${id}${dependent ? ' (depends on a reset step)' : ''}: all its work is pending again${approved ? '; its approval is taken back (approve it again before it runs)' : ''}\n`);
    return true;
}
/** `reset STEP --unit N..` / `--item NAME..`: those units pending again, the step's dependents whole. */
async function resetUnits(step, sel, opts, io) {
    const where = labelOf('reset', sel);
    const by = byOf(opts, io);
    let target;
    return withRun({
        ...opts,
        check: (plan) => {
            checkSteps(plan, [step], 'reset');
            units_checkUnitSelection(plan, 'reset', [step], sel, where);
        },
        inspect: async (plan, ckpt) => {
            target = await units_resolveUnits(plan, ckpt, 'reset', step, sel, where, io.env);
        },
    }, async (plan, ckpt) => {
        const t = target;
        const rec = ckpt.state.steps.get(step);
        if (!rec)
            io.out.write(`reset ${step} ${units_describeTarget(t)}: pending already (the step has not run)\n`);
        else {
            const approved = (0,journal_state/* approvalOf */.xf)(ckpt.state, step) !== undefined;
            const had = t.ranges.some(([s, e]) => rec.done.overlaps(s, e) || [...rec.failed.keys()].some((f) => f >= s && f < e));
            await ckpt.record({
                type: 'reset',
                step,
                failedOnly: false,
                reason: `checkpoint reset ${where}`,
                ranges: t.ranges,
                by,
            });
            if (!(0,journal_state/* isStepComplete */.EX)(rec))
                await ckpt.removeMarker(step);
            io.out.write(`reset ${step} ${units_describeTarget(t)}: ${had ? 'pending again' : 'pending already'} (by ${by}); the rest of its work stays${approved ? '; its approval is taken back (approve it again before it runs)' : ''}\n`);
        }
        const deps = (0,engine_prepare/* dependentsOf */.yk)(plan, [step]);
        for (const id of plan.steps.map((s) => s.id))
            if (id !== step && deps.has(id))
                await resetWhole(ckpt, id, true, by, io);
        return 0;
    });
}
async function resetCommand(steps, opts, io) {
    const sel = selectionOf(opts);
    if (sel) {
        if (opts.all || opts.failed)
            throw new context/* UsageError */.eb(`${labelOf('reset', sel)}: not with ${opts.all ? '--all' : '--failed'}; name one step and its units, e.g. \`checkpoint reset STEP --unit 3\``);
        if (steps.length !== 1)
            throw new context/* UsageError */.eb(`${labelOf('reset', sel)}: name exactly one step (the units are that step's), got ${steps.length === 0 ? 'none' : steps.join(', ')}; e.g. \`checkpoint reset STEP --unit 3\``);
        return resetUnits(steps[0], sel, opts, io);
    }
    if (!opts.all && steps.length === 0 && !opts.failed) {
        throw new context/* UsageError */.eb('reset: name the steps to reset, or pass --all (or --failed for failed units only)');
    }
    const startOverIfDamaged = opts.all === true && !opts.failed;
    return withRun({ ...opts, startOverIfDamaged }, async (plan, ckpt, startedOver) => {
        checkSteps(plan, steps, 'reset');
        if (startedOver) {
            // The records went with the damaged files: so do the side files of every step.
            for (const s of plan.steps) {
                await ckpt.clearStepFiles(s.id);
                await (0,promises_.rm)(ckpt.stateDir(s.id), { recursive: true, force: true });
            }
            io.err.write(`checkpoint: ${startedOver.damage}\n`);
            io.out.write(`reset --all: run ${ckpt.runId} starts over, every step is pending again; the damaged files are kept as ${startedOver.kept.map(context/* shown */.SP).join(', ')}\n`);
            return 0;
        }
        const named = opts.all || steps.length === 0 ? plan.steps.map((s) => s.id) : steps;
        const targets = opts.failed ? new Set(named) : (0,engine_prepare/* dependentsOf */.yk)(plan, named);
        let n = 0;
        const by = byOf(opts, io);
        // Each named step and its dependents go whole: the next run starts them afresh (items expanded again).
        for (const id of plan.steps.map((s) => s.id)) {
            if (!targets.has(id))
                continue;
            if (opts.failed) {
                const failed = ckpt.state.steps.get(id)?.failed.size ?? 0;
                if (failed === 0)
                    continue;
                await ckpt.record({
                    type: 'reset',
                    step: id,
                    failedOnly: true,
                    reason: 'checkpoint reset --failed',
                    by,
                });
                io.out.write(`reset ${id}: ${failed} failed unit(s) are pending again with fresh tries\n`);
                n += 1;
            }
            else if (await resetWhole(ckpt, id, !named.includes(id), by, io))
                n += 1;
        }
        if (n === 0)
            io.out.write('nothing to reset\n');
        return 0;
    });
}
/** `mark-done STEP --unit N..` / `--item NAME..`: those units done by hand; nothing else changes. */
async function markUnitsDone(step, sel, opts, io) {
    const where = labelOf('mark-done', sel);
    const by = byOf(opts, io);
    let target;
    return withRun({
        ...opts,
        check: (plan) => {
            checkSteps(plan, [step], 'mark-done');
            checkUnitSelection(plan, 'mark-done', [step], sel, where);
        },
        inspect: async (plan, ckpt) => {
            target = await resolveUnits(plan, ckpt, 'mark-done', step, sel, where, io.env);
        },
    }, async (_plan, ckpt) => {
        const t = target;
        if (t.init) {
            await ckpt.record(t.init.event);
            if (t.init.items)
                await ckpt.writeItems(step, t.init.items);
        }
        const rec = ckpt.state.steps.get(step);
        const already = rec ? t.ranges.every(([s, e]) => rec.done.covers(s, e)) : false;
        await ckpt.record({ type: 'mark-done', step, ranges: t.ranges, by });
        const after = ckpt.state.steps.get(step);
        const complete = after !== undefined && isStepComplete(after);
        if (complete)
            await ckpt.writeMarker(step);
        io.out.write(`marked ${step} ${describeTarget(t)} done (by hand, by ${by})${already ? '; they were done already' : ''}${complete ? `; ${step} is complete` : ''}\n`);
        return 0;
    });
}
async function markDoneCommand(steps, opts, io) {
    if (steps.length === 0)
        throw new UsageError('mark-done: name at least one step, e.g. `checkpoint mark-done schema`');
    const sel = selectionOf(opts);
    if (sel) {
        if (steps.length !== 1)
            throw new UsageError(`${labelOf('mark-done', sel)}: name exactly one step (the units are that step's), got ${steps.join(', ')}; e.g. \`checkpoint mark-done ${steps[0]} ${sel.items ? '--item NAME' : '--unit 3'}\``);
        return markUnitsDone(steps[0], sel, opts, io);
    }
    const by = byOf(opts, io);
    return withRun(opts, async (plan, ckpt) => {
        checkSteps(plan, steps, 'mark-done');
        const prep = await prepare(plan, ckpt.state, { env: io.env });
        for (const ev of prep.events) {
            if (ev.type === 'step-init' && steps.includes(ev.step) && !ckpt.state.steps.has(ev.step)) {
                await ckpt.record(ev);
                const list = prep.items.get(ev.step);
                if (list)
                    await ckpt.writeItems(ev.step, list);
            }
        }
        for (const id of steps) {
            await ckpt.record({ type: 'mark-done', step: id, by });
            await ckpt.writeMarker(id);
            io.out.write(`marked ${id} done (by hand, by ${by})\n`);
        }
        return 0;
    });
}
async function rollbackCommand(opts, io) {
    return withRun(opts, async (plan, ckpt) => {
        if (opts.to)
            checkSteps(plan, [opts.to], '--to');
        const order = rollbackOrder(plan, ckpt.state);
        if (order.length === 0) {
            io.out.write('nothing to roll back: no step has done work\n');
            return 0;
        }
        const to = opts.to;
        if (to !== undefined && !order.some((s) => s.id === to)) {
            throw new context/* UsageError */.eb(`rollback --to ${to}: step "${to}" has no done work, so there is nothing to roll back to; steps with done work, newest first: ${order.map((s) => s.id).join(', ')}`);
        }
        const todo = to === undefined ? order : order.slice(0, order.findIndex((s) => s.id === to) + 1);
        io.out.write(`rolling back ${todo.length} step(s), dependents first, then newest done work first: ${todo.map((s) => s.id).join(', ')}\n`);
        let ran = 0;
        let undone = 0;
        for (const s of todo) {
            if (s.rollback) {
                io.out.write(`rollback ${s.id}: ${s.rollback.split('\n')[0]}\n`);
                const proc = new process/* ManagedProcess */.TE({
                    argv: [...plan.shell.argv, s.rollback],
                    cwd: s.workingDirectory,
                    env: {
                        ...(0,env/* scrubEnv */.L)(io.env),
                        ...s.env,
                        CHECKPOINT_RUN_ID: ckpt.runId,
                        CHECKPOINT_STEP: s.id,
                        CHECKPOINT_STATE_DIR: ckpt.stateDir(s.id),
                        CHECKPOINT_OUTPUTS: ckpt.outputsPath(),
                    },
                    onLine: (line) => io.out.write(`[${s.id} rollback] ${line}\n`),
                });
                const exit = await proc.exited;
                if (exit.code !== 0) {
                    io.err.write(`rollback of ${s.id} failed (${exit.spawnError ?? `exit code ${exit.code ?? exit.signal}`}); later steps were rolled back, ${s.id} and earlier ones were not. Fix it and run \`checkpoint rollback\` again.\n`);
                    return 1;
                }
                ran += 1;
            }
            else {
                io.out.write(`rollback ${s.id}: no rollback command; its work is pending again (nothing outside the checkpoint was undone)\n`);
            }
            await ckpt.record({
                type: 'reset',
                step: s.id,
                failedOnly: false,
                forget: true,
                reason: 'rolled back',
            });
            await ckpt.clearStepFiles(s.id);
            undone += 1;
        }
        io.out.write(`rolled back ${undone} step(s), ${ran} rollback command(s) run\n`);
        return 0;
    });
}
/**
 * The steps with done work in the order `rollback` undoes them: a step only after every step that depends
 * on it (directly or through steps with no done work), and among those free to go, the one whose work was
 * done last first. The time is that of the step's last done unit (`lastDoneAt`); a checkpoint written
 * before that was recorded has only `completedAt`, and a step with neither counts as oldest.
 */
function rollbackOrder(plan, state) {
    const left = new Map();
    for (const step of plan.steps) {
        const rec = state.steps.get(step.id);
        if (!rec || !((0,journal_state/* isStepComplete */.EX)(rec) || rec.unitsDone > 0))
            continue;
        left.set(step.id, { step, at: rec.lastDoneAt ?? rec.completedAt ?? Number.NEGATIVE_INFINITY });
    }
    // Dependents (transitive) of each step with done work, among the steps with done work.
    const waitsFor = new Map();
    for (const id of left.keys()) {
        const deps = (0,engine_prepare/* dependentsOf */.yk)(plan, [id]);
        deps.delete(id);
        waitsFor.set(id, new Set([...deps].filter((d) => left.has(d))));
    }
    const out = [];
    while (left.size > 0) {
        let best;
        for (const [id, entry] of left) {
            const blocked = [...(waitsFor.get(id) ?? [])].some((d) => left.has(d));
            if (blocked)
                continue;
            // Ties (same millisecond, or no time at all): the step later in the plan first.
            if (!best || entry.at > best.at || (entry.at === best.at && entry.step.index > best.step.index))
                best = entry;
        }
        // Needs are acyclic (the plan loader refuses cycles), so some step is always free to go.
        if (!best)
            break;
        out.push(best.step);
        left.delete(best.step.id);
    }
    return out;
}
/** Who approves when `--by` is not given: the GitHub actor, else the local user. */
function defaultApprover(env) {
    return env.GITHUB_ACTOR?.trim() || env.USER?.trim() || env.USERNAME?.trim() || 'unknown';
}
/** `approve b,c d` and `approve: "b, c"`: step ids split on commas and white space. */
function approvalIds(args) {
    return [...new Set(args.flatMap((a) => a.split(/[\s,]+/)).filter((a) => a !== ''))];
}
/**
 * Every id names a step of the plan with `approval: true`; otherwise a usage error naming the step and the
 * fix. `where` starts the message: `approve` for the command, ``input `approve` `` for the action.
 */
function checkApprovable(plan, ids, where) {
    const gated = plan.steps.filter((s) => s.approval).map((s) => s.id);
    const which = gated.length > 0
        ? `steps that wait for approval: ${gated.join(', ')}`
        : 'no step of this plan has `approval: true`';
    for (const id of ids) {
        const step = plan.steps.find((s) => s.id === id);
        if (!step) {
            throw new context/* UsageError */.eb(`${where}: no step "${id}" in ${(0,context/* shown */.SP)(plan.file)}; ${which} (all steps: ${plan.steps.map((s) => s.id).join(', ')})`);
        }
        if (!step.approval) {
            throw new context/* UsageError */.eb(`${where}: step "${id}" does not wait for approval; add \`approval: true\` to it in ${(0,context/* shown */.SP)(plan.file)} to make it a manual intervention point (${which})`);
        }
    }
}
/** Records an `approve` event for each step and says so; approving again replaces who and when. */
async function recordApprovals(ckpt, ids, by, io) {
    for (const id of ids) {
        const before = (0,journal_state/* approvalOf */.xf)(ckpt.state, id);
        await ckpt.record({ type: 'approve', step: id, by });
        const rec = ckpt.state.steps.get(id);
        const done = rec !== undefined && (0,journal_state/* isStepComplete */.EX)(rec) ? ' (it is done already)' : '';
        const again = before
            ? `; it was approved before by ${before.by} at ${new Date(before.at).toISOString()}`
            : '';
        io.out.write(`approved ${id} (by ${by})${done}${again}\n`);
    }
}
async function approveCommand(steps, opts, io) {
    const ids = approvalIds(steps);
    if (ids.length === 0)
        throw new UsageError('approve: name at least one step, e.g. `checkpoint approve deploy`');
    if (opts.by !== undefined && opts.by.trim() === '')
        throw new UsageError('--by: expected a name, e.g. `--by alice`');
    const by = opts.by?.trim() || defaultApprover(io.env);
    const check = (plan) => checkApprovable(plan, ids, 'approve');
    return withRun({ ...opts, check }, async (_plan, ckpt) => {
        await recordApprovals(ckpt, ids, by, io);
        const again = [
            'checkpoint run',
            opts.file !== 'checkpoint.yml' ? `-f ${opts.file}` : '',
            opts.dir !== undefined ? `--dir ${opts.dir}` : '',
            opts.run !== undefined ? `--run ${ckpt.runId}` : '',
            // A sharded run resumes only with its own shard.
            ckpt.state.shard ? `--shard ${shardLabel(ckpt.state.shard)}` : '',
        ].filter(Boolean);
        io.out.write(`run again to continue: ${again.join(' ')}\n`);
        return 0;
    });
}
/**
 * The action's `approve` input: records the approvals in the run `runId` (after the restore, before the
 * engine), creating the run when there is no checkpoint yet, so a first run can be approved up front.
 * The ids are checked with `checkApprovable` first.
 */
async function approveInRun(o, io) {
    const dir = `${o.root}/${o.runId}`;
    await (0,fsutil/* ensureDir */.A0)(o.root);
    const lease = await (0,lock/* acquireLease */.ZZ)(dir, { runId: o.runId, attempt: 0 });
    try {
        const exists = await checkpoint/* Checkpoint */.F9.exists(o.root, o.runId);
        const ckpt = exists
            ? await checkpoint/* Checkpoint */.F9.read(o.root, o.runId)
            : checkpoint/* Checkpoint */.F9.blank(o.root, o.runId, o.plan.name, o.shard);
        await ckpt.openForWrite({ lease });
        try {
            await recordApprovals(ckpt, o.ids, o.by, io);
        }
        finally {
            await ckpt.compact();
            await ckpt.close();
        }
    }
    finally {
        await lease.release();
    }
}


/***/ })

};
