// What each subcommand loads: @kubernetes/client-node costs about 90 MB of RSS on import, so the
// operator, the sidecar and the rest of the CLI use it for types only. Each subcommand is started with
// --help, which loads its whole import graph before printing; a module hook records every file loaded.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('./breakwater.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'breakwater-loaded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HOOK = `
import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
registerHooks({
  load(url, context, next) {
    appendFileSync(process.env.LOADED_MODULES_FILE, url + '\\n');
    return next(url, context);
  },
});`;

function loaded(args: readonly string[]): string[] {
  const file = join(dir, `${args[0]}.txt`);
  const run = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(HOOK)}`, CLI, ...args], {
    env: { ...process.env, LOADED_MODULES_FILE: file },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(run.error).toBeUndefined();
  return readFileSync(file, 'utf8').trim().split('\n');
}

const isClientNode = (url: string) => url.includes('/node_modules/@kubernetes/client-node/');

// Each test starts Node with TypeScript sources; on a busy machine that takes seconds.
describe('modules loaded by the CLI', { timeout: 30_000 }, () => {
  it('the operator loads its Kubernetes client, and nothing of @kubernetes/client-node or undici', () => {
    const urls = loaded(['operator', '--help']);
    expect(urls.some((u) => u.endsWith('/src/kube/client.ts'))).toBe(true);
    expect(urls.some((u) => u.includes('/node_modules/pino/'))).toBe(true);
    expect(urls.filter(isClientNode)).toEqual([]);
    // Its requests go through node:https: a second HTTP client would cost the operator about 8 MB.
    expect(urls.filter((u) => u.includes('/node_modules/undici/'))).toEqual([]);
  });

  it.each([['sidecar', '--help'], ['deliveries', '--help'], ['demo', '--help'], ['status', '--help'], ['isolate', '--help'], ['validate']])('%s loads nothing of @kubernetes/client-node', (...args) => {
    const urls = loaded(args);
    expect(urls.some((u) => u.endsWith(`/cmd/${args[0]}.ts`))).toBe(true);
    expect(urls.filter(isClientNode)).toEqual([]);
  });
});
