export const id = 17;
export const ids = [17];
export const modules = {

/***/ 38017:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   reportShards: () => (/* binding */ reportShards)
/* harmony export */ });
/* unused harmony export matrixJobOf */
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(51455);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_fs_promises__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(76760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(node_path__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var yaml__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(38815);
/* harmony import */ var _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(14625);
/* harmony import */ var _report_shards_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(1897);
/* harmony import */ var _inputs_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(81729);
/* harmony import */ var _keys_js__WEBPACK_IMPORTED_MODULE_9__ = __webpack_require__(86764);
/* harmony import */ var _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(9673);
/* harmony import */ var _state_js__WEBPACK_IMPORTED_MODULE_10__ = __webpack_require__(33175);
/* harmony import */ var _store_factory_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(47656);
/* harmony import */ var _sync_js__WEBPACK_IMPORTED_MODULE_8__ = __webpack_require__(95627);
// `command: report` with `shard: N` (or `*/N`): the final job of a sharded matrix. Restores every shard's
// newest checkpoint from the store (one key per shard, the keys the matrix jobs saved under), gathers them
// into one report, writes it to the job summary and sets the outputs (`complete`: the union of the shards'
// done work is the whole of every step, and no range was done twice).











const KEY_FIX = 'set the same `key` in the matrix job and in this job (for example `key: backfill-$' +
    '{{ github.run_id }}`); the shards are then saved and found under `<key>-shardIofN`';
/**
 * Without an explicit `key`, the shards saved under `<workflow>-<job>-shardIofN-<run_id>`, where `<job>` is
 * the matrix job. A job cannot see another job's id, so it is read from the workflow file in the workspace
 * (GITHUB_WORKFLOW_REF): the job this one `needs` that has a matrix (or the only job it needs).
 */
async function matrixJobOf(cfg) {
    const why = (reason) => new _inputs_js__WEBPACK_IMPORTED_MODULE_5__/* .InputError */ .dz(`input \`key\`: \`command: report\` without \`key\` looks for the checkpoints of the matrix job this job \`needs\`, but ${reason}; ${KEY_FIX}`);
    const ref = cfg.workflowRef;
    if (!ref)
        throw why('GITHUB_WORKFLOW_REF is not set, so the workflow file is unknown');
    const at = ref.lastIndexOf('@');
    const full = at >= 0 ? ref.slice(0, at) : ref;
    const prefix = `${cfg.repository}/`;
    const path = full.startsWith(prefix) ? full.slice(prefix.length) : full.replace(/^[^/]+\/[^/]+\//, '');
    let text;
    try {
        text = await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.readFile)((0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(cfg.workspace, path), 'utf8');
    }
    catch {
        throw why(`the workflow file ${path} is not in the workspace (check the repository out first)`);
    }
    let doc;
    try {
        doc = (0,yaml__WEBPACK_IMPORTED_MODULE_2__/* .parse */ .qg)(text);
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
    _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.setOutput('complete', String(report.complete));
    _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.setOutput('resumed', String(report.shards.some((s) => s.present)));
    _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.setOutput('run-id', report.shards
        .map((s) => s.runId)
        .filter((id) => id !== null)
        .join(','));
    _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.setOutput('steps-done', String(done));
    _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.setOutput('steps-remaining', String(report.steps.length - done));
    _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.setOutput('units-done', String(report.units.done));
    _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.setOutput('units-remaining', String(report.units.remaining));
    _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.setOutput('outputs', JSON.stringify(outputs));
    _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.setOutput('checkpoint-key', keys.join(','));
}
/** The report job; failures end as a failed step with their message (never a throw). */
async function reportShards(ctx) {
    const total = ctx.inputs.shards;
    let keys;
    try {
        if (ctx.inputs.run !== undefined)
            throw new _inputs_js__WEBPACK_IMPORTED_MODULE_5__/* .InputError */ .dz('input `run`: `command: report` gathers the shards of a plan file; give the matrix job’s `file` instead of `run`');
        const base = { workflow: ctx.cfg.workflow, job: ctx.cfg.job, runId: ctx.cfg.runId };
        keys =
            ctx.inputs.key !== undefined
                ? (0,_keys_js__WEBPACK_IMPORTED_MODULE_9__/* .shardKeys */ .vM)({ ...base, key: ctx.inputs.key }, total)
                : (0,_keys_js__WEBPACK_IMPORTED_MODULE_9__/* .shardKeys */ .vM)({ ...base, job: await matrixJobOf(ctx.cfg) }, total);
    }
    catch (err) {
        if (!(err instanceof _inputs_js__WEBPACK_IMPORTED_MODULE_5__/* .InputError */ .dz))
            throw err;
        _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.setFailed(err.message);
        return;
    }
    const store = (0,_store_factory_js__WEBPACK_IMPORTED_MODULE_7__/* .makeStore */ .y)(ctx.inputs, ctx.cfg);
    const sources = [];
    const warnings = [];
    // One at a time: a restore stages its bundle in one fixed folder of the workspace.
    for (const key of keys) {
        const sync = new _sync_js__WEBPACK_IMPORTED_MODULE_8__/* .CheckpointSync */ .Ir({
            store,
            key,
            root: ctx.root,
            runId: key,
            planName: ctx.plan.name,
            workspace: ctx.cfg.workspace,
            temp: ctx.cfg.temp,
            paths: [],
            runOnly: true,
            ...(ctx.inputs.signingKey !== undefined ? { signingKey: ctx.inputs.signingKey } : {}),
            ghRunId: ctx.cfg.runId,
            attempt: ctx.cfg.runAttempt,
            state: new _state_js__WEBPACK_IMPORTED_MODULE_10__/* .MemoryStateProvider */ .i(),
            log: { info: (m) => _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.info(m), warning: (m) => _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.warning(m) },
        });
        const restored = await sync.restore();
        warnings.push(...sync.warnings);
        if (!(await _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_3__/* .Checkpoint */ .F9.exists(ctx.root, key)))
            continue;
        try {
            sources.push({ source: restored.entry ?? key, ckpt: await _journal_checkpoint_js__WEBPACK_IMPORTED_MODULE_3__/* .Checkpoint */ .F9.read(ctx.root, key) });
        }
        catch (err) {
            const message = `the checkpoint of ${key} could not be read: ${err.message}`;
            warnings.push(message);
            _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.warning(message);
        }
    }
    const report = (0,_report_shards_js__WEBPACK_IMPORTED_MODULE_4__/* .gatherShards */ .lp)({ sources, plan: ctx.plan, total, warnings });
    _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.info((0,_report_shards_js__WEBPACK_IMPORTED_MODULE_4__/* .renderReportText */ .Uv)(report).trimEnd());
    setReportOutputs(report, keys);
    if (ctx.cfg.summaryFile) {
        const logs = await (0,_report_shards_js__WEBPACK_IMPORTED_MODULE_4__/* .readShardLogTails */ .g6)(report, sources);
        await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_0__.appendFile)(ctx.cfg.summaryFile, `${(0,_report_shards_js__WEBPACK_IMPORTED_MODULE_4__/* .renderReportMarkdown */ .Ay)(report, { logs })}\n`);
    }
    for (const e of report.errors)
        _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.error(e, { title: 'checkpoint report: the shards do not add up' });
    if (!report.consistent) {
        _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.setFailed(`the shards do not add up (${report.errors.length} error(s)): ${report.errors[0]}${report.errors.length > 1 ? ' …' : ''}`);
    }
    else if (!report.complete) {
        _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.info(`incomplete: ${report.units.remaining} units remain across ${report.total} shards (${report.shards.filter((s) => !s.present).length} without a checkpoint); complete=false`);
    }
    else {
        _runner_commands_js__WEBPACK_IMPORTED_MODULE_6__.info(`complete: all ${report.units.total} units of ${report.total} shards are done`);
    }
}


/***/ })

};
