import { defineConfig } from 'vitest/config';

// Four projects: `unit` and `sidecar` are what `npm test` runs (seconds, loopback only); `delivery` (slow
// loopback suites) and `k8s` (the control plane built by hack/k8s-tools.sh) are run by `make test`.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['src/**/*.test.ts', 'cmd/**/*.test.ts', 'hack/**/*.test.ts'] } },
      { test: { name: 'sidecar', include: ['test/sidecar/**/*.test.ts'], testTimeout: 20_000 } },
      // Durable delivery at full length (a 20 s outage, a killed sidecar): `make test-delivery`, one file at a time.
      { test: { name: 'delivery', include: ['test/delivery/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 30_000, fileParallelism: false } },
      {
        test: {
          name: 'k8s',
          include: ['test/k8s/**/*.test.ts', 'test/operator/**/*.test.ts', 'test/chart/**/*.test.ts'],
          globalSetup: ['test/support/k8s-global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
