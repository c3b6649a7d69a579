import { defineConfig } from 'vitest/config';

// `npm run test:faults`: the fault and security campaigns (docs/reliability.md). Each campaign records its
// figures through test/faults/figures.ts; scripts/fault-figures.mjs prints one line per campaign.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most of the time goes to waiting (library retry back-offs, signal graces, child processes), not CPU:
    // three workers on a 2-core box overlap the waits (320 s → ~125 s) and every test still waits on events.
    maxWorkers: 3,
  },
});
