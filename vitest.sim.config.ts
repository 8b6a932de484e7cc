import { defineConfig } from 'vitest/config';
import { shared } from './vitest.shared.js';

// `npm run test:sim`: the deterministic simulators at full seed count (LOOM_SIM_SEEDS).
export default defineConfig({
  ...shared,
  test: {
    include: ['packages/*/src/**/*.sim.test.ts', 'packages/*/test/**/*.sim.test.ts'],
    pool: 'forks',
    testTimeout: 1_800_000,
  },
});
