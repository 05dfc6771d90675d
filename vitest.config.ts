import { defineConfig } from 'vitest/config';

const shared = {
  globalSetup: ['test/global-setup.ts'],
  testTimeout: 60_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    // Integration suites start real servers on loopback; keep them from starving each other on 2 cores.
    maxWorkers: 2,
    projects: [
      { test: { ...shared, name: 'suite', include: ['test/**/*.test.ts'], exclude: ['test/soak/**'] } },
      // The soak saturates both cores for minutes: it runs alone, after everything else
      // (sequence.groupOrder), so it neither slows the other suites nor is slowed by them.
      { test: { ...shared, name: 'soak', include: ['test/soak/**/*.test.ts'], sequence: { groupOrder: 1 }, testTimeout: 900_000 } },
    ],
  },
});
