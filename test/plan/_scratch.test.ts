import { it } from 'vitest';
import { parsePlan } from '../../src/plan/load.js';

const cases: string[] = [
  `version: 1\nsteps:\n  - id: a\n    run: x\n  - id: b\n    comand: y\n`,
  `version: 2\nname: 5\nshell: ''\nconcurrency: 0\nenv: {REGION: null, "MY-VAR": 1, ok: [1]}\ndefaults: {timeout: 10x, retry: {attempts: 0, delay: -1, backof: 2}, on-change: maybe}\nsteps:\n  - id: Build\n    run: ''\n    timeout: 0\n    retry: "3"\n    needs: 5\n    always: yes\n    inputs: [1]\n    batch: {size: 10k, range: {from: 5, to: 1}, items: [a], parallel: -1, order: random, max-failures: 150%}\n  - run: x\n    depends_on: [a]\n  - 7\n`,
  `version: 1\nsteps: {a: {run: x}}\n`,
  `version: 1\nsteps: []\n`,
  `steps:\n  - id: a\n`,
  `version: 1\nsteps:\n  - id: a\n    run: x\n    needs: [c]\n  - id: b\n    run: y\n  - id: c\n    run: z\n  - id: a\n    run: q\n`,
  `version: 1\nsteps:\n  - id: a\n    run: x\n    needs: [c]\n  - id: b\n    run: y\n  - id: c\n    run: z\n  - id: d\n    run: q\n    needs: [d, shema, b]\n`,
  `version: 1\nsteps:\n  - id: a\n    run: x\n    retry: {attempts: x}\n    batch: {items: {fiel: x}}\n  - id: b\n    run: y\n    batch: {items: {}}\n  - id: c\n    run: y\n    batch: {items: {file: a, glob: b}, max-failures: abc}\n  - id: d\n    run: y\n    batch: {}\n  - id: e\n    run: y\n    batch: {items: [a, "x\\ny", true, {}]}\n    retry: 1.5\n`,
  `version: 1\nsteps:\n  - id: a\n    run: [1\n`,
  ``,
  `hello`,
  `[1,2]`,
  `x: &a [*a]\nversion: 1\nsteps: *a`,
];
it('scratch', () => {
  for (const c of cases) {
    try { parsePlan(c, 'checkpoint.yml'); console.log('OK?!'); } catch (e) { console.log(`--- ${(e as Error).name}\n${(e as Error).message}`); }
  }
});
