import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fault campaigns run on their own (`npm run test:faults`), with their own time limits.
    exclude: ['test/faults/**', 'node_modules/**'],
    // Integration tests spawn real processes and wait for real signals; a loaded 2-core CI box needs room.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
