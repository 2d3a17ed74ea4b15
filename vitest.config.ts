import { defineConfig } from 'vitest/config';

// Three projects: `unit` and `sidecar` are what `npm test` runs (seconds, loopback only); `k8s` needs the
// control plane built by hack/k8s-tools.sh and is run by `make test`.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['src/**/*.test.ts', 'cmd/**/*.test.ts', 'hack/**/*.test.ts'] } },
      { test: { name: 'sidecar', include: ['test/sidecar/**/*.test.ts'], testTimeout: 20_000 } },
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
