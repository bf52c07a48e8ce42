import { defineConfig } from 'vitest/config';

/**
 * Two projects. unit: pure logic in process, files in parallel, seconds (`npm run test:unit`).
 * e2e: real namespaces, processes, sockets and the kernel (`npm run test:e2e`), one file at a time:
 * on a 2-core machine, parallel files of child processes and namespaces starve each other's
 * deadlines. `npm test` runs unit first, then e2e.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // Real sockets, namespaces and child processes: generous per-test time, no timing assertions.
          testTimeout: 120_000,
          hookTimeout: 60_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
