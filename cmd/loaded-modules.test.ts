// What each subcommand loads: @kubernetes/client-node costs about 90 MB of RSS on import, so the
// operator, the sidecar and the rest of the CLI use it for types only. Each subcommand is started with
// --help, which loads its whole import graph before printing; a module hook records every file loaded,
// and at exit the Node built-ins too (`builtin:` lines). The sidecar is also run serving a config, since
// it loads its delivery store and Redis client only when an integration needs them.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
});
process.on('exit', () => {
  const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => 'builtin:' + m.slice(13) + '\\n');
  appendFileSync(process.env.LOADED_MODULES_FILE, builtins.join(''));
});`;

const hookArgs = (file: string) => ({
  args: ['--import', `data:text/javascript,${encodeURIComponent(HOOK)}`, CLI],
  env: { ...process.env, LOADED_MODULES_FILE: file },
});

function loaded(args: readonly string[]): string[] {
  const file = join(dir, `${args[0]}.txt`);
  const hook = hookArgs(file);
  const run = spawnSync(process.execPath, [...hook.args, ...args], { env: hook.env, encoding: 'utf8', timeout: 30_000 });
  expect(run.error).toBeUndefined();
  return readFileSync(file, 'utf8').trim().split('\n');
}

/** What `breakwater sidecar` has loaded once it listens with `config`, and is then stopped. */
async function loadedServing(name: string, config: string): Promise<string[]> {
  const file = join(dir, `serving-${name}.txt`);
  const configFile = join(dir, `${name}.yaml`);
  writeFileSync(configFile, config);
  const hook = hookArgs(file);
  const flags = ['--config', configFile, '--port', '0', '--admin-port', '0', '--secrets-dir', dir, '--data-dir', join(dir, name)];
  const child = spawn(process.execPath, [...hook.args, 'sidecar', ...flags], { env: hook.env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  for await (const chunk of child.stdout) {
    out += String(chunk);
    if (out.includes('"msg":"listening"')) break;
  }
  child.kill('SIGTERM');
  if (child.exitCode === null) await once(child, 'exit');
  expect(out).toContain('"msg":"listening"');
  return readFileSync(file, 'utf8').trim().split('\n');
}

const integration = (name: string, spec: string) => `apiVersion: breakwater.dev/v1alpha1
kind: ExternalIntegration
metadata: { name: ${name} }
spec:
  upstream: { url: "http://127.0.0.1:9" }
${spec}`;

const isClientNode = (url: string) => url.includes('/node_modules/@kubernetes/client-node/');
const isStoreCode = (url: string) => /\/src\/delivery\/(open|sqlite-[a-z]+|redis-[a-z]+)\.ts$/.test(url) || url.includes('/node_modules/@redis/') || url === 'builtin:sqlite';
// Node's own copy of undici, behind getters of node:http that an ES module import of it reads (eslint.config.js).
const isBundledUndici = (url: string) => url.startsWith('builtin:internal/deps/undici/');

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

  it('the sidecar loads no delivery store, no Redis client and not Node\'s bundled undici while no integration delivers', async () => {
    const urls = await loadedServing('no-delivery', integration('plain', ''));
    expect(urls.some((u) => u.endsWith('/src/sidecar/server.ts'))).toBe(true);
    expect(urls.filter(isStoreCode)).toEqual([]);
    expect(urls.filter(isBundledUndici)).toEqual([]);
  });

  it('the sidecar loads its delivery store once an integration delivers', async () => {
    const urls = await loadedServing('delivery', integration('orders', '  delivery: {}\n'));
    expect(urls.some((u) => u.endsWith('/src/delivery/sqlite-store.ts'))).toBe(true);
  });

  it.each([['sidecar', '--help'], ['deliveries', '--help'], ['demo', '--help'], ['status', '--help'], ['isolate', '--help'], ['validate']])('%s loads nothing of @kubernetes/client-node', (...args) => {
    const urls = loaded(args);
    expect(urls.some((u) => u.endsWith(`/cmd/${args[0]}.ts`))).toBe(true);
    expect(urls.filter(isClientNode)).toEqual([]);
  });
});
