import { defineConfig } from 'vitest/config';

// Integration tests start real Orthanc processes and radnode children: give them room, run files one at a time
// on a 2-core machine so that timing-dependent waits (quiet periods, StableAge) are not starved.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'models/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: !process.env.CI,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
