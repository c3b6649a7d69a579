export const id = 765;
export const ids = [765];
export const modules = {

/***/ 50765:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   approveInRun: () => (/* binding */ approveInRun),
/* harmony export */   checkApprovable: () => (/* binding */ checkApprovable),
/* harmony export */   resetCommand: () => (/* binding */ resetCommand),
/* harmony export */   rollbackCommand: () => (/* binding */ rollbackCommand)
/* harmony export */ });
/* unused harmony exports markDoneCommand, rollbackOrder, defaultApprover, approvalIds, approveCommand */
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(51455);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_fs_promises__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var _engine_env_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(98725);
/* harmony import */ var _engine_prepare_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(45268);
/* harmony import */ var _exec_process_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(67879);
/* harmony import */ var _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(2550);
/* harmony import */ var _journal_fsutil_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(91268);
/* harmony import */ var _journal_journal_file_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(97162);
/* harmony import */ var _journal_lock_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(17680);
/* harmony import */ var _journal_snapshot_js__WEBPACK_IMPORTED_MODULE_8__ = __webpack_require__(58123);
/* harmony import */ var _journal_state_js__WEBPACK_IMPORTED_MODULE_9__ = __webpack_require__(49226);
/* harmony import */ var _context_js__WEBPACK_IMPORTED_MODULE_10__ = __webpack_require__(14875);
// Commands that change a checkpoint by hand: reset, mark-done, rollback, approve. Each takes the run's lease
// first.












function checkSteps(plan, ids, flag) {
    for (const id of ids) {
        if (!plan.steps.some((s) => s.id === id)) {
            throw new _context_js__WEBPACK_IMPORTED_MODULE_10__/* .UsageError */ .eb(`${flag}: no step "${id}" in ${(0,_context_js__WEBPACK_IMPORTED_MODULE_10__/* .shown */ .SP)(plan.file)}; steps: ${plan.steps.map((s) => s.id).join(', ')}`);
        }
    }
}
/** The checkpoint cannot be read because it is damaged (not because a newer program wrote it). */
function isDamage(err) {
    return (err instanceof _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_4__/* .CheckpointCorruptError */ .qd ||
        err instanceof _journal_journal_file_js__WEBPACK_IMPORTED_MODULE_6__/* .JournalCorruptError */ .Zi ||
        (err instanceof _journal_snapshot_js__WEBPACK_IMPORTED_MODULE_8__/* .SnapshotError */ .JC && !(err instanceof _journal_snapshot_js__WEBPACK_IMPORTED_MODULE_8__/* .SnapshotVersionError */ .lJ)));
}
async function withRun(opts, fn) {
    const plan = await (0,_context_js__WEBPACK_IMPORTED_MODULE_10__/* .requirePlan */ .VH)(opts);
    opts.check?.(plan);
    const root = (0,_context_js__WEBPACK_IMPORTED_MODULE_10__/* .rootOf */ .I5)(opts, plan);
    const id = await (0,_context_js__WEBPACK_IMPORTED_MODULE_10__/* .resolveRunId */ .nv)(root, opts.run);
    const lease = await (0,_journal_lock_js__WEBPACK_IMPORTED_MODULE_7__/* .acquireLease */ .ZZ)(`${root}/${id}`, { runId: id, attempt: 0 });
    try {
        let ckpt;
        let startedOver;
        try {
            ckpt = await _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_4__/* .Checkpoint */ .F9.read(root, id);
        }
        catch (err) {
            if (!opts.startOverIfDamaged || !isDamage(err))
                throw err;
            const fresh = await _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_4__/* .Checkpoint */ .F9.startOver(root, id, plan.name);
            ckpt = fresh.ckpt;
            startedOver = { damage: err.message, kept: fresh.kept };
        }
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
async function resetCommand(steps, opts, io) {
    if (!opts.all && steps.length === 0 && !opts.failed) {
        throw new _context_js__WEBPACK_IMPORTED_MODULE_10__/* .UsageError */ .eb('reset: name the steps to reset, or pass --all (or --failed for failed units only)');
    }
    const startOverIfDamaged = opts.all === true && !opts.failed;
    return withRun({ ...opts, startOverIfDamaged }, async (plan, ckpt, startedOver) => {
        checkSteps(plan, steps, 'reset');
        if (startedOver) {
            // The records went with the damaged files: so do the side files of every step.
            for (const s of plan.steps) {
                await ckpt.clearStepFiles(s.id);
                await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.rm)(ckpt.stateDir(s.id), { recursive: true, force: true });
            }
            io.err.write(`checkpoint: ${startedOver.damage}\n`);
            io.out.write(`reset --all: run ${ckpt.runId} starts over, every step is pending again; the damaged files are kept as ${startedOver.kept.map(_context_js__WEBPACK_IMPORTED_MODULE_10__/* .shown */ .SP).join(', ')}\n`);
            return 0;
        }
        const named = opts.all || steps.length === 0 ? plan.steps.map((s) => s.id) : steps;
        const targets = opts.failed ? new Set(named) : (0,_engine_prepare_js__WEBPACK_IMPORTED_MODULE_2__/* .dependentsOf */ .yk)(plan, named);
        let n = 0;
        // The whole record goes: the next run starts the step afresh (items expanded again, approval taken back).
        const forget = (id) => ckpt.record({ type: 'reset', step: id, failedOnly: false, forget: true, reason: 'checkpoint reset' });
        for (const id of plan.steps.map((s) => s.id)) {
            if (!targets.has(id))
                continue;
            const rec = ckpt.state.steps.get(id);
            // No record but an approval (given before the step was first prepared): the reset takes it back.
            if (!rec && !opts.failed && (0,_journal_state_js__WEBPACK_IMPORTED_MODULE_9__/* .approvalOf */ .xf)(ckpt.state, id)) {
                await forget(id);
                io.out.write(`reset ${id}: its approval is taken back\n`);
                n += 1;
                continue;
            }
            if (!rec)
                continue;
            if (opts.failed) {
                const failed = rec.failed.size;
                if (failed === 0)
                    continue;
                await ckpt.record({ type: 'reset', step: id, failedOnly: true, reason: 'checkpoint reset --failed' });
                io.out.write(`reset ${id}: ${failed} failed unit(s) are pending again with fresh tries\n`);
            }
            else {
                const approved = (0,_journal_state_js__WEBPACK_IMPORTED_MODULE_9__/* .approvalOf */ .xf)(ckpt.state, id) !== undefined;
                await forget(id);
                await ckpt.clearStepFiles(id);
                await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.rm)(ckpt.stateDir(id), { recursive: true, force: true });
                io.out.write(`reset ${id}${named.includes(id) ? '' : ' (depends on a reset step)'}: all its work is pending again${approved ? '; its approval is taken back (approve it again before it runs)' : ''}\n`);
            }
            n += 1;
        }
        if (n === 0)
            io.out.write('nothing to reset\n');
        return 0;
    });
}
async function markDoneCommand(steps, opts, io) {
    if (steps.length === 0)
        throw new UsageError('mark-done: name at least one step, e.g. `checkpoint mark-done schema`');
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
            await ckpt.record({ type: 'mark-done', step: id });
            await ckpt.writeMarker(id);
            io.out.write(`marked ${id} done (by hand)\n`);
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
            throw new _context_js__WEBPACK_IMPORTED_MODULE_10__/* .UsageError */ .eb(`rollback --to ${to}: step "${to}" has no done work, so there is nothing to roll back to; steps with done work, newest first: ${order.map((s) => s.id).join(', ')}`);
        }
        const todo = to === undefined ? order : order.slice(0, order.findIndex((s) => s.id === to) + 1);
        io.out.write(`rolling back ${todo.length} step(s), dependents first, then newest done work first: ${todo.map((s) => s.id).join(', ')}\n`);
        let ran = 0;
        let undone = 0;
        for (const s of todo) {
            if (s.rollback) {
                io.out.write(`rollback ${s.id}: ${s.rollback.split('\n')[0]}\n`);
                const proc = new _exec_process_js__WEBPACK_IMPORTED_MODULE_3__/* .ManagedProcess */ .TE({
                    argv: [...plan.shell.argv, s.rollback],
                    cwd: s.workingDirectory,
                    env: {
                        ...(0,_engine_env_js__WEBPACK_IMPORTED_MODULE_1__/* .scrubEnv */ .L)(io.env),
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
        if (!rec || !((0,_journal_state_js__WEBPACK_IMPORTED_MODULE_9__/* .isStepComplete */ .EX)(rec) || rec.unitsDone > 0))
            continue;
        left.set(step.id, { step, at: rec.lastDoneAt ?? rec.completedAt ?? Number.NEGATIVE_INFINITY });
    }
    // Dependents (transitive) of each step with done work, among the steps with done work.
    const waitsFor = new Map();
    for (const id of left.keys()) {
        const deps = (0,_engine_prepare_js__WEBPACK_IMPORTED_MODULE_2__/* .dependentsOf */ .yk)(plan, [id]);
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
            throw new _context_js__WEBPACK_IMPORTED_MODULE_10__/* .UsageError */ .eb(`${where}: no step "${id}" in ${(0,_context_js__WEBPACK_IMPORTED_MODULE_10__/* .shown */ .SP)(plan.file)}; ${which} (all steps: ${plan.steps.map((s) => s.id).join(', ')})`);
        }
        if (!step.approval) {
            throw new _context_js__WEBPACK_IMPORTED_MODULE_10__/* .UsageError */ .eb(`${where}: step "${id}" does not wait for approval; add \`approval: true\` to it in ${(0,_context_js__WEBPACK_IMPORTED_MODULE_10__/* .shown */ .SP)(plan.file)} to make it a manual intervention point (${which})`);
        }
    }
}
/** Records an `approve` event for each step and says so; approving again replaces who and when. */
async function recordApprovals(ckpt, ids, by, io) {
    for (const id of ids) {
        const before = (0,_journal_state_js__WEBPACK_IMPORTED_MODULE_9__/* .approvalOf */ .xf)(ckpt.state, id);
        await ckpt.record({ type: 'approve', step: id, by });
        const rec = ckpt.state.steps.get(id);
        const done = rec !== undefined && (0,_journal_state_js__WEBPACK_IMPORTED_MODULE_9__/* .isStepComplete */ .EX)(rec) ? ' (it is done already)' : '';
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
    await (0,_journal_fsutil_js__WEBPACK_IMPORTED_MODULE_5__/* .ensureDir */ .A0)(o.root);
    const lease = await (0,_journal_lock_js__WEBPACK_IMPORTED_MODULE_7__/* .acquireLease */ .ZZ)(dir, { runId: o.runId, attempt: 0 });
    try {
        const exists = await _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_4__/* .Checkpoint */ .F9.exists(o.root, o.runId);
        const ckpt = exists
            ? await _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_4__/* .Checkpoint */ .F9.read(o.root, o.runId)
            : _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_4__/* .Checkpoint */ .F9.blank(o.root, o.runId, o.plan.name, o.shard);
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
