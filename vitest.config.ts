import { defineConfig } from 'vitest/config';
import { shared } from './vitest.shared.js';

// `npm test`: unit tests next to the code, simulator at 1,000 seeds, and the quick
// cross-package suites that start real processes. Long suites have their own configs.
export default defineConfig({
  ...shared,
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/integration/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
