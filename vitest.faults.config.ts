import { defineConfig } from 'vitest/config';

// `npm run test:faults`: the fault and security campaigns (docs/reliability.md). Each campaign records its
// figures through test/faults/figures.ts; scripts/fault-figures.mjs prints one line per campaign.
// The script runs them in two passes: the campaigns that judge time windows (signals: exit within 5 s;
// concurrency: races between starting runs) alone, one at a time, after the others, which share two
// workers (they mostly wait on library back-offs and child processes).
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
