import { defineConfig } from 'vitest/config';
import { shared } from './vitest.shared.js';

// `npm run test:compose`: the containerized network, driven from the host. Run it through
// scripts/docker/test-compose.sh, which builds the image and runs docker compose around it.
export default defineConfig({
  ...shared,
  test: {
    include: ['test/compose/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 120_000,
  },
});
