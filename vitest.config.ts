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
    // Most of the time goes to waiting (library retry back-offs, signal graces, child processes), not CPU:
    // three workers on a 2-core box overlap the waits (320 s → ~125 s) and every test still waits on events.
    maxWorkers: 3,
  },
});
