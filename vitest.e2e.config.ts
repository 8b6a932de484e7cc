import { defineConfig } from 'vitest/config';
import { shared } from './vitest.shared.js';

// `npm run test:e2e`: long suites with real processes on loopback (kill loops, fault injection).
export default defineConfig({
  ...shared,
  test: {
    include: ['test/e2e/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 900_000,
    hookTimeout: 300_000,
  },
});
