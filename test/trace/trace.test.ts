// Traces through the real CLI: spans sent over OTLP/HTTP to a local receiver, or written with --trace FILE,
// for done, failed, retried, resumed and interrupted runs, and a dead collector that must not matter.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, startCli, useProjects } from '../support/cli.js';
import {
  closedPort,
  type ExportTraceServiceRequestJson,
  type OtlpReceiver,
  type ReceivedSpan,
  spansFromJson,
  spanTree,
  startOtlpReceiver,
} from '../support/otlp-receiver.js';

const project = useProjects();

let receiver: OtlpReceiver;
beforeEach(async () => {
  receiver = await startOtlpReceiver();
});
afterEach(async () => {
  await receiver.close();
});

/** No collector from the surroundings: each test says where its spans go. */
const quiet = {
  OTEL_EXPORTER_OTLP_ENDPOINT: '',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
  OTEL_SERVICE_NAME: '',
  OTEL_RESOURCE_ATTRIBUTES: '',
};
const toReceiver = () => ({ ...quiet, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });

// Unit 1 of `backfill` fails once (exit 3) and passes on its second try; `each` runs one item per unit.
const PLAN = `version: 1
name: traced
concurrency: 2
defaults:
  retry: { attempts: 2, delay: 10ms }
steps:
  - id: setup
    name: Set up
    run: echo setting up
  - id: backfill
    run: |
      if [ "$CHECKPOINT_BATCH_INDEX" = 1 ] && [ ! -e failed-once ]; then touch failed-once; exit 3; fi
      echo "rows $CHECKPOINT_BATCH_START $CHECKPOINT_BATCH_END"
    batch:
      range: { from: 0, to: 6 }
      size: 2
      parallel: 2
  - id: each
    run: echo "$CHECKPOINT_ITEM"
    batch:
      items: [alpha, beta]
      size: 1
`;

const by = (k: string) => (a: ReceivedSpan, b: ReceivedSpan) =>
  String(a.attributes[k]).localeCompare(String(b.attributes[k]));

/** The tree every traced run of PLAN makes, checked span by span. */
function expectPlanTree(spans: ReceivedSpan[]): void {
  const { roots, children } = spanTree(spans);
  expect(roots).toHaveLength(1);
  const attempt = roots[0] as ReceivedSpan;
  expect(attempt.name).toBe('run traced');
  expect(attempt.attributes).toMatchObject({
    'checkpoint.plan.name': 'traced',
    'checkpoint.attempt.number': 1,
    'checkpoint.attempt.resumed': false,
    'checkpoint.attempt.units_done_at_start': 0,
    'checkpoint.attempt.units_done': 6,
    'checkpoint.attempt.units_remaining': 0,
    'checkpoint.result': 'done',
    'checkpoint.exit_code': 0,
  });
  expect(String(attempt.attributes['checkpoint.run.id'])).toMatch(/^traced-\d{8}-\d{6}$/);
  expect(attempt.resource['service.name']).toBe('checkpoint');
  for (const s of spans) {
    expect(s.traceId).toBe(attempt.traceId);
    expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(s.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(s.end).toBeGreaterThanOrEqual(s.start);
  }

  const steps = children(attempt);
  expect(steps.map((s) => s.name)).toEqual(['step setup', 'step backfill', 'step each']);
  for (const s of steps) {
    expect(s.attributes['checkpoint.result']).toBe('done');
    expect(s.start).toBeGreaterThanOrEqual(attempt.start);
    expect(s.end).toBeLessThanOrEqual(attempt.end);
    for (const u of children(s)) {
      expect(u.name).toBe(`unit ${s.attributes['checkpoint.step.id']}`);
      expect(u.attributes['checkpoint.step.id']).toBe(s.attributes['checkpoint.step.id']);
      expect(u.start).toBeGreaterThanOrEqual(s.start);
      expect(u.end).toBeLessThanOrEqual(s.end);
    }
  }
  const [setup, backfill, each] = steps as [ReceivedSpan, ReceivedSpan, ReceivedSpan];
  expect(setup.attributes).toMatchObject({ 'checkpoint.step.id': 'setup', 'checkpoint.step.name': 'Set up' });

  const setupUnits = children(setup);
  expect(setupUnits).toHaveLength(1);
  expect(setupUnits[0]?.attributes).toEqual({
    'checkpoint.step.id': 'setup',
    'checkpoint.unit.try': 1,
    'checkpoint.result': 'done',
    'checkpoint.exit_code': 0,
  });

  // Three ranges, the second tried twice: a failed span (try 1, exit 3) and a done one (try 2).
  const units = children(backfill).map((u) => u.attributes);
  expect(units).toHaveLength(4);
  const ranges = units.map((a) => `${a['checkpoint.unit.start']}-${a['checkpoint.unit.end']}`);
  expect([...ranges].sort()).toEqual(['0-2', '2-4', '2-4', '4-6']);
  const second = children(backfill).filter((u) => u.attributes['checkpoint.unit.index'] === 1);
  expect(second.map((u) => u.attributes['checkpoint.unit.try'])).toEqual([1, 2]);
  expect(second[0]?.attributes).toMatchObject({
    'checkpoint.result': 'failed',
    'checkpoint.exit_code': 3,
    'checkpoint.unit.retrying': true,
  });
  expect(String(second[0]?.attributes['checkpoint.reason'])).toContain('exit code 3 (try 1 of 2)');
  expect(second[0]?.status.code).toBe(2); // ERROR
  expect(second[1]?.attributes).toMatchObject({ 'checkpoint.result': 'done', 'checkpoint.exit_code': 0 });
  expect(second[1]?.status.code).toBe(0);
  expect((second[1] as ReceivedSpan).start).toBeGreaterThanOrEqual((second[0] as ReceivedSpan).end);
  for (const u of children(backfill).filter((x) => x.attributes['checkpoint.unit.index'] !== 1))
    expect(u.attributes).toMatchObject({ 'checkpoint.unit.try': 1, 'checkpoint.result': 'done' });

  // Item lists: indices as the range, and the item itself for `size: 1`.
  const items = children(each).sort(by('checkpoint.unit.index'));
  expect(items.map((u) => u.attributes)).toEqual([
    {
      'checkpoint.step.id': 'each',
      'checkpoint.unit.try': 1,
      'checkpoint.unit.index': 0,
      'checkpoint.unit.start': 0,
      'checkpoint.unit.end': 1,
      'checkpoint.unit.item': 'alpha',
      'checkpoint.result': 'done',
      'checkpoint.exit_code': 0,
    },
    {
      'checkpoint.step.id': 'each',
      'checkpoint.unit.try': 1,
      'checkpoint.unit.index': 1,
      'checkpoint.unit.start': 1,
      'checkpoint.unit.end': 2,
      'checkpoint.unit.item': 'beta',
      'checkpoint.result': 'done',
      'checkpoint.exit_code': 0,
    },
  ]);
}

describe('traces over OTLP/HTTP', () => {
  it('sends the attempt → steps → units tree, with ranges, items, tries and exit codes', async () => {
    const p = await project(PLAN);
    const r = await runCli(['run'], {
      cwd: p.dir,
      env: { ...toReceiver(), OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=sesame' },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(receiver.requests.length).toBeGreaterThan(0);
    for (const q of receiver.requests) {
      expect(q.contentType).toBe('application/json');
      expect(q.headers['x-collector-key']).toBe('sesame');
    }
    expectPlanTree(receiver.spans);
  });

  it('a resumed attempt says so, with the units done at its start; the failed one before says why', async () => {
    const p = await project(`version: 1
name: resumable
steps:
  - id: prepare
    run: 'true'
  - id: chunks
    run: |
      if [ "$CHECKPOINT_BATCH_INDEX" = 2 ] && [ -e broken ]; then echo "bad chunk" >&2; exit 4; fi
    batch:
      range: { from: 0, to: 5 }
      parallel: 1
      order: sequential
`);
    await writeFile(join(p.dir, 'broken'), '');
    const first = await runCli(['run'], { cwd: p.dir, env: toReceiver() });
    expect(first.code).toBe(1);
    const attempt1 = spanTree(receiver.spans).roots;
    expect(attempt1).toHaveLength(1);
    expect(attempt1[0]?.attributes).toMatchObject({
      'checkpoint.attempt.number': 1,
      'checkpoint.attempt.resumed': false,
      'checkpoint.attempt.units_done_at_start': 0,
      'checkpoint.result': 'failed',
      'checkpoint.exit_code': 1,
    });
    expect(attempt1[0]?.status.code).toBe(2);
    const failedUnit = receiver.spans.find(
      (s) => s.attributes['checkpoint.result'] === 'failed' && s.name === 'unit chunks',
    );
    expect(failedUnit?.attributes).toMatchObject({ 'checkpoint.unit.index': 2, 'checkpoint.exit_code': 4 });
    const failedStep = receiver.spans.find((s) => s.name === 'step chunks');
    expect(failedStep?.attributes['checkpoint.result']).toBe('failed');

    receiver.spans.length = 0;
    await rm(join(p.dir, 'broken'));
    const second = await runCli(['run'], { cwd: p.dir, env: toReceiver() });
    expect(second.code).toBe(0);
    const { roots, children } = spanTree(receiver.spans);
    expect(roots).toHaveLength(1);
    const attempt = roots[0] as ReceivedSpan;
    expect(attempt.attributes).toMatchObject({
      'checkpoint.run.id': attempt1[0]?.attributes['checkpoint.run.id'],
      'checkpoint.attempt.number': 2,
      'checkpoint.attempt.resumed': true,
      // `prepare` and chunks 0 and 1.
      'checkpoint.attempt.units_done_at_start': 3,
      'checkpoint.attempt.units_done': 6,
      'checkpoint.result': 'done',
    });
    const [prepare, chunks] = children(attempt);
    expect(prepare?.attributes).toMatchObject({
      'checkpoint.step.id': 'prepare',
      'checkpoint.result': 'done',
      'checkpoint.step.done_earlier': true,
    });
    expect(prepare && children(prepare)).toEqual([]);
    expect(chunks && children(chunks).map((u) => u.attributes['checkpoint.unit.index'])).toEqual([2, 3, 4]);
  });

  it('an interrupted run (SIGINT, exit 75) still sends its spans, marked interrupted', async () => {
    const p = await project(`version: 1
name: stoppable
steps:
  - id: slow
    run: echo started; sleep 30
`);
    const c = startCli(['run'], { cwd: p.dir, env: toReceiver() });
    await c.waitForOutput(/\[slow\] started/);
    c.child.kill('SIGINT');
    const r = await c.result;
    expect(r.code).toBe(75);
    const { roots, children } = spanTree(receiver.spans);
    const attempt = roots[0] as ReceivedSpan;
    expect(attempt.attributes).toMatchObject({
      'checkpoint.result': 'interrupted',
      'checkpoint.exit_code': 75,
      'checkpoint.signal': 'SIGINT',
    });
    expect(attempt.events.map((e) => String(e.attributes.message))).toEqual([
      expect.stringContaining('stopping (received SIGINT)'),
    ]);
    const step = children(attempt)[0] as ReceivedSpan;
    expect(step.attributes['checkpoint.result']).toBe('interrupted');
    expect(children(step).map((u) => u.attributes['checkpoint.result'])).toEqual(['interrupted']);
  });

  it('takes the service name from OTEL_SERVICE_NAME and resource attributes from OTEL_RESOURCE_ATTRIBUTES', async () => {
    const p = await project(`version: 1\nname: named\nsteps:\n  - id: one\n    run: 'true'\n`);
    const r = await runCli(['run'], {
      cwd: p.dir,
      env: {
        ...quiet,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
        OTEL_SERVICE_NAME: 'nightly-backfill',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=ci',
      },
    });
    expect(r.code).toBe(0);
    expect(receiver.spans.length).toBe(3);
    expect(receiver.spans[0]?.resource).toMatchObject({
      'service.name': 'nightly-backfill',
      'deployment.environment.name': 'ci',
    });
  });

  it('a dead collector does not fail the run: one warning, and the run ends in bounded time', async () => {
    const port = await closedPort();
    const p = await project(PLAN);
    const t0 = Date.now();
    const r = await runCli(['run'], {
      cwd: p.dir,
      env: { ...quiet, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` },
    });
    const elapsed = Date.now() - t0;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/complete: 6 of 6 units done/);
    const warnings = r.stderr.split('\n').filter(Boolean);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      new RegExp(
        `^checkpoint: warning: could not export traces to http://127\\.0\\.0\\.1:${port}/v1/traces \\(OTEL_EXPORTER_OTLP_ENDPOINT\\): .*ECONNREFUSED.* the run itself is unaffected\\)$`,
      ),
    );
    // The exporter's retries stop with the 5 s wait for them.
    expect(elapsed).toBeLessThan(15_000);
  });

  it('after SIGINT a dead collector gets a short wait: exit 75 well within the 5 s stop, one warning', async () => {
    const port = await closedPort();
    const p = await project(`version: 1
name: stoppable
steps:
  - id: slow
    run: echo started; sleep 30
`);
    const c = startCli(['run'], {
      cwd: p.dir,
      env: { ...quiet, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` },
    });
    await c.waitForOutput(/\[slow\] started/);
    const t0 = Date.now();
    c.child.kill('SIGINT');
    const r = await c.result;
    const elapsed = Date.now() - t0;
    expect(r.code).toBe(75);
    const warnings = r.stderr.split('\n').filter(Boolean);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^checkpoint: warning: could not export traces to http:\/\/127\.0\.0\.1:\d+\/v1\/traces /,
    );
    // The unit ends at once on SIGTERM; the spans get 1.5 s, and the exporter's retries don't hold the process.
    expect(elapsed).toBeLessThan(5000);
  });

  it('an endpoint that is not a URL is a warning, not an error', async () => {
    const p = await project(`version: 1\nname: bad-url\nsteps:\n  - id: one\n    run: 'true'\n`);
    const r = await runCli(['run'], {
      cwd: p.dir,
      env: { ...quiet, OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' },
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      'checkpoint: warning: OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" is not an http(s) URL; traces are not sent. Set it to the collector\'s OTLP/HTTP address, e.g. http://localhost:4318\n',
    );
  });
});

describe('checkpoint run --trace FILE', () => {
  it('appends OTLP JSON (one ExportTraceServiceRequest per line) with the same tree', async () => {
    const p = await project(PLAN);
    const r = await runCli(['run', '--trace', 'trace.jsonl'], { cwd: p.dir, env: quiet });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = (await readFile(join(p.dir, 'trace.jsonl'), 'utf8')).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.length).toBeGreaterThan(0);
    const spans: ReceivedSpan[] = [];
    for (const line of lines) {
      const doc = JSON.parse(line) as ExportTraceServiceRequestJson;
      // The OTLP JSON encoding: resourceSpans → scopeSpans → spans, hex ids, nanoseconds as strings.
      expect(Object.keys(doc)).toEqual(['resourceSpans']);
      for (const rs of doc.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) {
          expect(ss.scope?.name).toBe('checkpoint');
          for (const s of ss.spans ?? []) {
            expect(s.startTimeUnixNano).toMatch(/^\d{19}$/);
            expect(s.endTimeUnixNano).toMatch(/^\d{19}$/);
          }
        }
      }
      spans.push(...spansFromJson(doc));
    }
    expectPlanTree(spans);
    expect(receiver.spans).toEqual([]);
  });

  it('refuses a path it cannot write, naming the flag, the value and the fix (exit 2)', async () => {
    const p = await project(`version: 1\nname: x\nsteps:\n  - id: one\n    run: 'true'\n`);
    const r = await runCli(['run', '--trace', 'no/such/dir/trace.jsonl'], { cwd: p.dir, env: quiet });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'checkpoint: --trace: cannot write "no/such/dir/trace.jsonl" (ENOENT); pick a file in an existing folder you can write to\n',
    );
  });
});
