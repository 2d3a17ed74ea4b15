// vitest globalSetup of the promtool project: promtool itself, and the helm and control plane binaries
// (the chart is rendered with helm; the operator whose /metrics is checked needs an API server).
import type { TestProject } from 'vitest/node';
import { ensureK8sTools } from './k8s-tools.ts';
import { ensurePromtool } from './promtool.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the promtool binary hack/promtool.sh built. */
    promtool: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  project.provide('promtool', await ensurePromtool());
  project.provide('k8sBinDir', await ensureK8sTools());
}
