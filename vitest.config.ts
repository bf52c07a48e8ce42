import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real sockets, namespaces and child processes: generous per-test time, no timing assertions.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Tests spawn processes and namespaces; running files in parallel on 2 cores makes them flaky.
    fileParallelism: false,
  },
});
