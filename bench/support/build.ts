// The processes under test run as the container image runs them: TypeScript compiled by tsc
// (tsconfig.build.json), not stripped at load. Stripping types at run time keeps a TypeScript parser in
// memory (about 15 MB of RSS per process on Node 24) and costs startup CPU, which a pod never pays.
// The baselines and the origin are compiled the same way, so every Node process is measured alike.
// Source maps are written as for the image, whose sidecar runs with --enable-source-maps and loads them.
import { execFileSync } from 'node:child_process';
import { existsSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Maps a source file of the repository (`cmd/breakwater.ts`) to the file to run. */
export type Locate = (sourceFile: string) => string;

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/** The benchmark's own programs that run as processes under measurement, or inside them. */
const NODE_PROCESSES = ['bench/support/origin.ts', 'bench/support/heap-probe.ts', 'bench/targets/http-proxy.ts', 'bench/targets/undici.ts'];

/** Runs the sources as they are (Node strips the types): no build step, exact source lines in profiles. */
export const fromSource: Locate = (sourceFile) => join(REPO, sourceFile);

/** Compiles cmd/, src/ and the benchmark's own processes into `dir` and locates files there. */
export function compiled(dir: string): Locate {
  const outDir = join(dir, 'dist');
  const config = join(dir, 'tsconfig.json');
  writeFileSync(
    config,
    JSON.stringify({
      extends: join(REPO, 'tsconfig.build.json'),
      // Type errors are the typecheck's business; this build only emits.
      compilerOptions: { outDir, rootDir: REPO, noCheck: true, typeRoots: [join(REPO, 'node_modules', '@types')] },
      include: ['cmd', 'src', ...NODE_PROCESSES].map((p) => join(REPO, p)),
      exclude: [join(REPO, '**/*.test.ts')],
    }),
  );
  execFileSync(process.execPath, [TSC, '-p', config], { stdio: 'inherit' });
  // Packages resolve from the repository's node_modules, as they do from the image's.
  symlinkSync(join(REPO, 'node_modules'), join(outDir, 'node_modules'), 'dir');
  if (!existsSync(join(outDir, 'package.json'))) writeFileSync(join(outDir, 'package.json'), '{"type":"module"}\n');
  return (sourceFile) => join(outDir, sourceFile.replace(/\.ts$/, '.js'));
}
