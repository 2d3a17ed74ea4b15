import { defineConfig } from 'vitest/config';

// Six projects: `unit` and `sidecar` are what `npm test` runs (seconds, loopback only); `delivery` holds
// the slow loopback suites, `k8s` needs the control plane built by hack/k8s-tools.sh, `promtool` also
// promtool (hack/promtool.sh), and `pods` a real node and the built image; `make test` runs them all.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['src/**/*.test.ts', 'cmd/**/*.test.ts', 'hack/**/*.test.ts'] } },
      { test: { name: 'sidecar', include: ['test/sidecar/**/*.test.ts'], testTimeout: 20_000 } },
      // Durable delivery at full length (a 20 s outage, a killed sidecar): `make test-delivery`, one file at a time.
      { test: { name: 'delivery', include: ['test/delivery/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 30_000, fileParallelism: false } },
      {
        test: {
          name: 'promtool',
          include: ['test/promtool/**/*.test.ts'],
          globalSetup: ['test/support/promtool-global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
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
      {
        test: {
          name: 'pods',
          include: ['test/pods/**/*.test.ts'],
          globalSetup: ['test/support/pods-global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
