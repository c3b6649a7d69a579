export const id = 920;
export const ids = [920];
export const modules = {

/***/ 90920:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {


// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  createTracing: () => (/* binding */ createTracing)
});

// UNUSED EXPORTS: FLUSH_WAIT_MS, FLUSH_WAIT_SIGNALLED_MS, describeError

// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __webpack_require__(48161);
// EXTERNAL MODULE: ./node_modules/@opentelemetry/exporter-trace-otlp-http/build/src/index.js
var src = __webpack_require__(86004);
// EXTERNAL MODULE: ./node_modules/@opentelemetry/resources/build/src/index.js
var build_src = __webpack_require__(75647);
// EXTERNAL MODULE: ./node_modules/@opentelemetry/sdk-trace-base/build/src/index-shim.js
var index_shim = __webpack_require__(19644);
// EXTERNAL MODULE: ./node_modules/@opentelemetry/semantic-conventions/dist/stable_attributes.mjs
var stable_attributes = __webpack_require__(42123);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(73024);
// EXTERNAL MODULE: ./node_modules/@opentelemetry/otlp-transformer/build/src/index.js
var otlp_transformer_build_src = __webpack_require__(69107);
;// CONCATENATED MODULE: ./src/trace/file-exporter.ts
// `--trace FILE`: each batch of finished spans becomes one line of the file, an OTLP
// ExportTraceServiceRequest in OTLP/JSON — the very bytes the OTLP/HTTP exporter would POST (the SDK's own
// serializer makes them), so any OTLP tool reads the file line by line.


// ExportResultCode (from @opentelemetry/core, which the SDK uses but this package does not depend on).
const SUCCESS = 0;
const FAILED = 1;
const NEWLINE = Buffer.from('\n');
class OtlpJsonFileExporter {
    #fd;
    /** `fd`: the file, opened for appending by the caller (so a bad path is a usage error before the run). */
    constructor(fd) {
        this.#fd = fd;
    }
    export(spans, resultCallback) {
        const fd = this.#fd;
        if (fd === undefined) {
            resultCallback({ code: FAILED, error: new Error('the trace file is already closed') });
            return;
        }
        try {
            const body = otlp_transformer_build_src.JsonTraceSerializer.serializeRequest(spans);
            if (body === undefined)
                throw new Error('the spans could not be serialized as OTLP JSON');
            // One write per line: lines of runs appending to the same file at once do not interleave.
            const line = Buffer.concat([body, NEWLINE]);
            let off = 0;
            while (off < line.length)
                off += (0,external_node_fs_.writeSync)(fd, line, off, line.length - off);
            resultCallback({ code: SUCCESS });
        }
        catch (err) {
            resultCallback({ code: FAILED, error: err instanceof Error ? err : new Error(String(err)) });
        }
    }
    async forceFlush() { }
    async shutdown() {
        const fd = this.#fd;
        this.#fd = undefined;
        if (fd !== undefined)
            (0,external_node_fs_.closeSync)(fd);
    }
}

// EXTERNAL MODULE: ./node_modules/@opentelemetry/api/build/src/index.js
var api_build_src = __webpack_require__(63914);
// EXTERNAL MODULE: ./src/journal/state.ts
var journal_state = __webpack_require__(49226);
;// CONCATENATED MODULE: ./src/trace/attributes.ts
// The names of the span attributes a traced run sets (documented in README.md, "Traces"). A user's queries
// and dashboards depend on them: change none without saying so in the docs.
/** Every span: `done`, `failed`, `interrupted`, `yielded` (and `blocked` for a step that could not run). */
const RESULT = 'checkpoint.result';
/** Why a span ended the way it did: the failure, the stop or the run's reason, as the log says it. */
const REASON = 'checkpoint.reason';
// The attempt span (the root).
const RUN_ID = 'checkpoint.run.id';
const PLAN_NAME = 'checkpoint.plan.name';
const ATTEMPT = 'checkpoint.attempt.number';
const RESUMED = 'checkpoint.attempt.resumed';
const UNITS_DONE_AT_START = 'checkpoint.attempt.units_done_at_start';
const UNITS_DONE = 'checkpoint.attempt.units_done';
const UNITS_REMAINING = 'checkpoint.attempt.units_remaining';
const UNITS_FAILED = 'checkpoint.attempt.units_failed';
/** The attempt: the run's exit code (0, 1, 75); a unit: its process's exit code. */
const EXIT_CODE = 'checkpoint.exit_code';
/** The attempt: the signal that stopped the run; a unit: the signal that killed its process. */
const SIGNAL = 'checkpoint.signal';
// Step and unit spans.
const STEP_ID = 'checkpoint.step.id';
const STEP_NAME = 'checkpoint.step.name';
/** A step span for a step done in an earlier attempt (zero length: nothing of it ran). */
const STEP_DONE_EARLIER = 'checkpoint.step.done_earlier';
// Unit spans.
const UNIT_INDEX = 'checkpoint.unit.index';
/** Batch units: `[start, end)` — numbers for ranges, item indices for lists. */
const UNIT_START = 'checkpoint.unit.start';
const UNIT_END = 'checkpoint.unit.end';
/** Item-list units of `size: 1`: the item itself (`CHECKPOINT_ITEM`). */
const UNIT_ITEM = 'checkpoint.unit.item';
/** 1-based try within this attempt (`CHECKPOINT_TRY`). */
const UNIT_TRY = 'checkpoint.unit.try';
/** A failed try that will be tried again. */
const UNIT_RETRYING = 'checkpoint.unit.retrying';

;// CONCATENATED MODULE: ./src/trace/spans.ts
// The spans of one run attempt, built from the engine's event stream only (the engine knows nothing of
// tracing): the attempt is the root, each step a child of it, each try of a unit a child of its step. Times
// are taken when the events arrive; a unit ends at its start plus the process's own run time.



/** Wall-clock milliseconds with sub-millisecond precision (OpenTelemetry takes it as an epoch time). */
const now = () => performance.timeOrigin + performance.now();
/** What a unit's end event says about its process: the exit code or the signal, when the engine names it. */
function exitFacts(ev) {
    if (ev.result === 'done')
        return { code: 0 };
    if (ev.result === 'yielded')
        return { code: 75 };
    if (ev.exit !== undefined || ev.signal !== undefined) {
        if (ev.signal)
            return { signal: ev.signal };
        return ev.exit === null || ev.exit === undefined ? {} : { code: ev.exit };
    }
    if (ev.result === 'interrupted' || ev.detail === undefined)
        return {};
    // Events without the fields (older callers): the engine's failure detail: `<unit>: exit code 3 (try 1 of 2)` or `<unit>: killed by SIGKILL (try ...)`.
    const code = /: exit code (\d+) \(try \d+ of \d+\)/.exec(ev.detail);
    if (code?.[1] !== undefined)
        return { code: Number(code[1]) };
    const sig = /: killed by (SIG[A-Z0-9]+) \(try \d+ of \d+\)/.exec(ev.detail);
    if (sig?.[1] !== undefined)
        return { signal: sig[1] };
    return {};
}
/** The attempt's result from the run's exit code and reason. */
function attemptResult(r) {
    if (r.exitCode === 0)
        return 'done';
    if (r.exitCode === 75)
        return r.reason === 'stopped early: a unit yielded' ? 'yielded' : 'interrupted';
    return 'failed';
}
class RunTrace {
    #tracer;
    #startedAt;
    #attempt;
    #ckpt;
    #planSteps = new Map();
    #steps = new Map();
    #units = new Map();
    /** Units recorded done in this attempt: the run's done count minus these were done at its start. */
    #doneHere = 0;
    /** Facts known when the engine starts, in case the run ends without a result (an error). */
    #doneBefore = 0;
    /** Frozen item lists of `size: 1` item steps (for `checkpoint.unit.item`), read once. */
    #items = new Map();
    #itemsRead = new Map();
    #pending = new Set();
    constructor(tracer, startedAt) {
        this.#tracer = tracer;
        this.#startedAt = startedAt;
    }
    /** The engine exists: the attempt span starts (at the command's start, so set-up is part of it). */
    engine(ckpt, plan) {
        if (this.#attempt)
            return;
        this.#ckpt = ckpt;
        for (const s of plan.steps)
            this.#planSteps.set(s.id, s);
        const state = ckpt.state;
        // The engine's own rules for these two; the run's result confirms them at the end.
        const attempt = (state.attempts[state.attempts.length - 1]?.attempt ?? 0) + 1;
        const resumed = (0,journal_state/* isResumed */.Kx)(state);
        for (const r of state.steps.values())
            this.#doneBefore += r.unitsDone;
        this.#attempt = this.#tracer.startSpan(`run ${plan.name}`, {
            startTime: this.#startedAt,
            attributes: {
                [RUN_ID]: ckpt.runId,
                [PLAN_NAME]: plan.name,
                [ATTEMPT]: attempt,
                [RESUMED]: resumed,
            },
        });
    }
    event(ev) {
        if (!this.#attempt)
            return;
        const t = now();
        switch (ev.type) {
            case 'step-state':
                if (ev.state === 'running')
                    this.#stepSpan(ev.step, t);
                else if (ev.state === 'done' || ev.state === 'failed' || ev.state === 'blocked')
                    this.#endStep(ev.step, ev.state, t, ev.detail);
                else if (ev.state === 'stopped')
                    this.#endStep(ev.step, 'interrupted', t, ev.detail);
                return;
            case 'unit-start':
                this.#startUnit(ev.unit, ev.try, t);
                return;
            case 'unit-end':
                this.#endUnit(ev, t);
                return;
            case 'notice':
                this.#attempt.addEvent('notice', { message: ev.message }, t);
                return;
        }
    }
    /** The run is over: whatever is still open ends now, and the attempt span takes the run's result. */
    finish(outcome, error) {
        const attempt = this.#attempt;
        if (!attempt)
            return;
        this.#attempt = undefined;
        const t = now();
        for (const [key, u] of this.#units) {
            u.span.setAttribute(RESULT, 'interrupted');
            u.span.end(t);
            this.#units.delete(key);
        }
        for (const [id, s] of this.#steps)
            if (!s.ended)
                this.#endStep(id, s.last === 'yielded' ? 'yielded' : 'interrupted', t);
        const r = outcome?.result;
        if (r) {
            const result = attemptResult(r);
            attempt.setAttributes({
                [ATTEMPT]: r.attempt,
                [RESUMED]: r.resumed,
                [UNITS_DONE_AT_START]: Math.max(0, r.unitsDone - this.#doneHere),
                [UNITS_DONE]: r.unitsDone,
                [UNITS_REMAINING]: r.unitsRemaining,
                [UNITS_FAILED]: r.unitsFailed,
                [EXIT_CODE]: r.exitCode,
                [RESULT]: result,
                [REASON]: r.reason,
            });
            if (result === 'failed')
                attempt.setStatus({ code: api_build_src.SpanStatusCode.ERROR, message: r.reason });
        }
        else {
            attempt.setAttribute(UNITS_DONE_AT_START, this.#doneBefore);
            attempt.setAttribute(RESULT, 'failed');
            if (outcome)
                attempt.setAttribute(EXIT_CODE, outcome.exitCode);
        }
        if (outcome?.signal)
            attempt.setAttribute(SIGNAL, outcome.signal);
        if (error !== undefined) {
            const e = error instanceof Error ? error : new Error(String(error));
            attempt.recordException(e, t);
            attempt.setAttributes({ [RESULT]: 'failed', [REASON]: e.message });
            attempt.setStatus({ code: api_build_src.SpanStatusCode.ERROR, message: e.message });
        }
        attempt.end(t);
    }
    /** Resolves once spans waiting for an item list have ended. */
    async settled() {
        while (this.#pending.size > 0)
            await Promise.all([...this.#pending]);
    }
    #step(id) {
        return this.#planSteps.get(id);
    }
    #stepSpan(id, t) {
        let s = this.#steps.get(id);
        if (!s) {
            const attempt = this.#attempt;
            s = {
                span: this.#tracer.startSpan(`step ${id}`, { startTime: t, attributes: { [STEP_ID]: id, [STEP_NAME]: this.#step(id)?.name ?? id } }, api_build_src.trace.setSpan(api_build_src.ROOT_CONTEXT, attempt)),
                ended: false,
            };
            this.#steps.set(id, s);
        }
        return s;
    }
    #endStep(id, result, t, detail) {
        const s = this.#stepSpan(id, t);
        if (s.ended)
            return;
        s.ended = true;
        const attrs = { [RESULT]: result };
        if (detail !== undefined)
            attrs[REASON] = detail;
        if (result === 'done' && detail === 'done in an earlier attempt')
            attrs[STEP_DONE_EARLIER] = true;
        s.span.setAttributes(attrs);
        if (result === 'failed' || result === 'blocked')
            s.span.setStatus({ code: api_build_src.SpanStatusCode.ERROR, ...(detail !== undefined ? { message: detail } : {}) });
        s.span.end(t);
    }
    #startUnit(u, tryNo, t) {
        const key = `${u.step}\u0000${u.start}`;
        const open = this.#units.get(key);
        if (open) {
            open.span.setAttribute(RESULT, 'interrupted');
            open.span.end(t);
        }
        const step = this.#step(u.step);
        const attrs = { [STEP_ID]: u.step, [UNIT_TRY]: tryNo };
        if (step?.batch) {
            attrs[UNIT_INDEX] = u.index;
            attrs[UNIT_START] = u.start;
            attrs[UNIT_END] = u.end;
            if (step.batch.space.kind === 'items' && step.batch.size === 1 && !step.batch.adaptive)
                void this.#itemList(u.step);
        }
        const parent = this.#stepSpan(u.step, t).span;
        const span = this.#tracer.startSpan(`unit ${u.step}`, { startTime: t, attributes: attrs }, api_build_src.trace.setSpan(api_build_src.ROOT_CONTEXT, parent));
        this.#units.set(key, { span, startedAt: t });
    }
    #endUnit(ev, t) {
        const key = `${ev.unit.step}\u0000${ev.unit.start}`;
        const u = this.#units.get(key);
        if (!u)
            return;
        this.#units.delete(key);
        const result = ev.result === 'retry' ? 'failed' : ev.result;
        const s = this.#steps.get(ev.unit.step);
        if (s)
            s.last = result;
        if (result === 'done')
            this.#doneHere += 1;
        const attrs = { [RESULT]: result };
        const exit = exitFacts(ev);
        if (exit.code !== undefined)
            attrs[EXIT_CODE] = exit.code;
        if (exit.signal !== undefined)
            attrs[SIGNAL] = exit.signal;
        if (ev.result === 'retry')
            attrs[UNIT_RETRYING] = true;
        if (ev.detail !== undefined)
            attrs[REASON] = ev.detail;
        u.span.setAttributes(attrs);
        if (result === 'failed')
            u.span.setStatus({
                code: api_build_src.SpanStatusCode.ERROR,
                ...(ev.detail !== undefined ? { message: ev.detail } : {}),
            });
        // The process's own run time, from the start event; never past the end event (recording it took the rest).
        const end = Math.min(t, Math.max(u.startedAt, u.startedAt + ev.ms));
        const step = this.#step(ev.unit.step);
        if (step?.batch?.space.kind === 'items' && step.batch.size === 1 && !step.batch.adaptive) {
            const index = ev.unit.start;
            const withItem = (list) => {
                const item = list?.[index];
                if (item !== undefined)
                    u.span.setAttribute(UNIT_ITEM, item);
                u.span.end(end);
            };
            if (this.#itemsRead.has(ev.unit.step))
                withItem(this.#itemsRead.get(ev.unit.step));
            else
                this.#track(this.#itemList(ev.unit.step).then(withItem));
            return;
        }
        u.span.end(end);
    }
    #itemList(step) {
        let p = this.#items.get(step);
        if (!p) {
            const ckpt = this.#ckpt;
            p = (ckpt ? ckpt.readItems(step) : Promise.resolve(undefined)).then((list) => list, () => undefined);
            p = p.then((list) => {
                this.#itemsRead.set(step, list);
                return list;
            });
            this.#items.set(step, p);
        }
        return p;
    }
    #track(p) {
        const q = p.finally(() => this.#pending.delete(q));
        this.#pending.add(q);
    }
}

;// CONCATENATED MODULE: ./src/trace/otel.ts
// The OpenTelemetry half of tracing, imported only when tracing is on: the tracer provider, the OTLP/HTTP
// exporter and the file exporter, and the bounded flush at the end of the run.







/** The longest the end of a run waits for its spans to be exported. */
const FLUSH_WAIT_MS = 5000;
/**
 * After a SIGINT/SIGTERM the run has promised to end within 5 s (3 s of them for the units' grace): the
 * spans get what is left.
 */
const FLUSH_WAIT_SIGNALLED_MS = 1500;
/** The first failure of each destination is kept, to be told once at the end. */
class Watched {
    #inner;
    #onFailure;
    constructor(inner, onFailure) {
        this.#inner = inner;
        this.#onFailure = onFailure;
    }
    export(spans, resultCallback) {
        this.#inner.export(spans, (result) => {
            // ExportResultCode.SUCCESS is 0.
            if (result.code !== 0)
                this.#onFailure(result.error ?? new Error('export failed'));
            resultCallback(result);
        });
    }
    shutdown() {
        return this.#inner.shutdown();
    }
    forceFlush() {
        return this.#inner.forceFlush?.() ?? Promise.resolve();
    }
}
/** A short reason for a failed export: the network error's code, the HTTP status, or the message. */
function describeError(err) {
    if (err instanceof AggregateError && err.errors.length > 0)
        return describeError(err.errors[0]);
    if (err instanceof Error) {
        const code = err.code;
        if (typeof code === 'number')
            return `HTTP ${code}${err.message ? ` ${err.message}` : ''}`;
        return err.message || (typeof code === 'string' ? code : err.name);
    }
    return String(err);
}
class OtelTracing {
    #provider;
    #destinations;
    #setup;
    #broken = false;
    constructor(provider, destinations, setup) {
        this.#provider = provider;
        this.#destinations = destinations;
        this.#setup = setup;
    }
    async around(run, inner = {}) {
        const rt = new RunTrace(this.#provider.getTracer('checkpoint', this.#setup.version), this.#setup.startedAt);
        const hooks = {
            onEngine: (ckpt, engine, plan) => {
                this.#guard(() => rt.engine(ckpt, plan));
                inner.onEngine?.(ckpt, engine, plan);
            },
            onEvent: (ev) => {
                this.#guard(() => rt.event(ev));
                inner.onEvent?.(ev);
            },
        };
        let outcome;
        let error;
        try {
            outcome = await run(hooks);
            return outcome;
        }
        catch (err) {
            error = err ?? new Error('unknown error');
            throw err;
        }
        finally {
            this.#guard(() => rt.finish(outcome, error));
            await this.#close(rt, outcome?.signal !== undefined);
        }
    }
    /** Tracing never breaks a run: a bug here turns tracing off with one warning. */
    #guard(fn) {
        if (this.#broken)
            return;
        try {
            fn();
        }
        catch (err) {
            this.#broken = true;
            this.#setup.warn(`traces stopped: ${describeError(err)} (set CHECKPOINT_DEBUG=1 for details; please report it); the run goes on`);
            if (process.env.CHECKPOINT_DEBUG === '1')
                this.#setup.warn(String(err.stack));
        }
    }
    /** Exports what is left and shuts the exporters down, waiting a bounded time; says once what failed. */
    async #close(rt, signalled) {
        const waitMs = signalled ? FLUSH_WAIT_SIGNALLED_MS : FLUSH_WAIT_MS;
        const finished = new Set();
        let timer;
        let onSignal;
        const work = (async () => {
            await rt.settled();
            await Promise.all(this.#destinations.map((d) => d.processor.shutdown().then(() => finished.add(d), (err) => {
                d.failure ??= describeError(err);
                finished.add(d);
            })));
            return 'done';
        })();
        const late = new Promise((resolve) => {
            timer = setTimeout(() => resolve('timeout'), waitMs);
            // The run is over and its exit code decided: another Ctrl-C only cuts the wait short.
            onSignal = () => resolve('signal');
            process.on('SIGINT', onSignal);
            process.on('SIGTERM', onSignal);
        });
        const how = await Promise.race([work, late]);
        clearTimeout(timer);
        if (onSignal) {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
        }
        if (how !== 'done') {
            for (const d of this.#destinations) {
                if (!finished.has(d))
                    d.failure ??= how === 'timeout' ? `not done within ${waitMs / 1000} s` : 'cut short by a signal';
            }
            // Only the exporter's retries are left; they must not keep a finished command's process alive.
            if (this.#setup.exitWhenStuck)
                setTimeout(() => process.exit(), 100).unref();
        }
        const failed = this.#destinations.filter((d) => d.failure !== undefined);
        if (failed.length > 0) {
            this.#setup.warn(`${failed.map((d) => `could not export traces to ${d.name}: ${d.failure}`).join('; ')} ` +
                '(check that the collector is running and reachable; the run itself is unaffected)');
        }
    }
}
/** Buffer sizes unless OTEL_BSP_* say otherwise: big plans end thousands of units between two exports. */
function bufferConfig() {
    return process.env.OTEL_BSP_MAX_QUEUE_SIZE ? {} : { maxQueueSize: 16_384 };
}
function createTracing(settings, setup) {
    const destinations = [];
    const add = (name, exporter) => {
        const d = { name, processor: undefined };
        d.processor = new index_shim/* BatchSpanProcessor */.J(new Watched(exporter, (err) => {
            d.failure ??= describeError(err);
        }), bufferConfig());
        destinations.push(d);
    };
    if (settings.endpoint !== undefined) {
        // Headers (OTEL_EXPORTER_OTLP_HEADERS), compression and a timeout the user set come from the environment
        // through the SDK. Without a timeout, an export gives up when the run's wait for it does.
        const timeoutSet = process.env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT || process.env.OTEL_EXPORTER_OTLP_TIMEOUT;
        add(`${settings.endpoint} (${settings.endpointVar})`, new src/* OTLPTraceExporter */.Q({
            url: settings.endpoint,
            ...(timeoutSet ? {} : { timeoutMillis: FLUSH_WAIT_MS }),
        }));
    }
    if (setup.fd !== undefined)
        add(settings.file ?? 'the trace file', new OtlpJsonFileExporter(setup.fd));
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the environment detector) win over these defaults.
    const resource = (0,build_src.defaultResource)()
        .merge((0,build_src.resourceFromAttributes)({
        [stable_attributes/* ATTR_SERVICE_NAME */.UX4]: settings.serviceName,
        ...(setup.version !== undefined ? { [stable_attributes/* ATTR_SERVICE_VERSION */.HZt]: setup.version } : {}),
        'host.name': (0,external_node_os_.hostname)(),
    }))
        .merge((0,build_src.detectResources)({ detectors: [build_src.envDetector] }));
    const provider = new index_shim/* BasicTracerProvider */.l({
        resource,
        spanProcessors: destinations.map((d) => d.processor),
    });
    return new OtelTracing(provider, destinations, setup);
}


/***/ })

};
