import { fileURLToPath } from 'node:url';
import type { UserConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * Tests import workspace packages from their TypeScript sources, so `npm test` never runs
 * against a stale build. Processes that tests spawn run the built `dist/` (npm test builds first).
 */
export const shared: UserConfig = {
  resolve: {
    alias: [
      { find: /^@loom\/([a-z-]+)\/(.+)$/, replacement: `${root}packages/$1/src/$2.ts` },
      { find: /^@loom\/([a-z-]+)$/, replacement: `${root}packages/$1/src/index.ts` },
    ],
  },
};
