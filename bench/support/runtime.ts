// The Node runtime settings every Node target runs with: those the webhook gives the injected sidecar
// for the default memory limit (V8's heap sizes, malloc's arenas), and NODE_ENV as in the image. The
// bare passthroughs get them too, so a ratio compares what each program does per call, not two heap
// sizings: the same passthrough in the same pod would run with them.
import { SIDECAR_RESOURCES, sidecarRuntimeEnv } from '../../src/operator/inject.ts';

export function nodeRuntimeEnv(): NodeJS.ProcessEnv {
  const runtime = Object.fromEntries(sidecarRuntimeEnv(SIDECAR_RESOURCES.memoryLimit).map((e) => [e.name, e.value]));
  return { ...process.env, NODE_ENV: 'production', ...runtime };
}
