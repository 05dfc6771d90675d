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
      { test: { ...shared, name: 'suite', include: ['test/**/*.test.ts'], exclude: ['test/soak/**', 'test/load/**'] } },
      // Tests that judge the gateway's own CPU time or event loop delay: alone, one file at a time,
      // after the suite (sequence.groupOrder), so other suites' load on 2 cores does not count.
      { test: { ...shared, name: 'load', include: ['test/load/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } } },
      // The soak saturates both cores for minutes: it runs alone, after everything else, so it
      // neither slows the other suites nor is slowed by them.
      { test: { ...shared, name: 'soak', include: ['test/soak/**/*.test.ts'], sequence: { groupOrder: 2 }, testTimeout: 900_000 } },
    ],
  },
});
