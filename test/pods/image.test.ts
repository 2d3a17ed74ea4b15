// `make image` builds, with no Docker engine, the image the Dockerfile describes for users who have
// one: the same user, entrypoint, command, working directory, environment and ports, the same paths,
// the same launcher. The Dockerfile's final stage is read here, so the two cannot drift apart
// silently. And the build is reproducible: building again gives the same digest.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGES_DIR } from '../support/pods-global-setup.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TARBALL = join(IMAGES_DIR, 'breakwater.tar');
const work = mkdtempSync(join(tmpdir(), 'breakwater-image-test-'));

interface ImageConfig {
  config: { User: string; WorkingDir: string; Entrypoint: string[]; Cmd: string[]; Env: string[]; ExposedPorts: Record<string, object> };
  rootfs: { diff_ids: string[] };
}

async function member(tarball: string, path: string): Promise<Buffer> {
  const { stdout } = await run('tar', ['-xOf', tarball, path], { encoding: 'buffer', maxBuffer: 512 * 1024 * 1024 });
  return stdout;
}

async function manifestDigest(tarball: string): Promise<string> {
  const index = JSON.parse((await member(tarball, 'index.json')).toString()) as { manifests: { digest: string }[] };
  return index.manifests[0]!.digest;
}

async function blob(tarball: string, digest: string): Promise<Buffer> {
  return member(tarball, `blobs/sha256/${digest.replace('sha256:', '')}`);
}

/** The final stage of the Dockerfile: its instructions, with continuation lines joined. */
function finalStage(): { instruction: string; args: string }[] {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const from = lines.map((l) => l.split(/\s+/)[0]).lastIndexOf('FROM');
  return lines.slice(from + 1).map((l) => {
    const [instruction = '', ...rest] = l.split(/\s+/);
    return { instruction, args: rest.join(' ') };
  });
}

let config: ImageConfig;
let paths: Set<string>;
let launcher: string;

beforeAll(async () => {
  const manifest = JSON.parse((await blob(TARBALL, await manifestDigest(TARBALL))).toString()) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  config = JSON.parse((await blob(TARBALL, manifest.config.digest)).toString()) as ImageConfig;
  paths = new Set();
  for (const layer of manifest.layers) {
    const file = join(work, 'layer.tar');
    await run('bash', ['-c', `tar -xOf "$0" "$1" >"$2"`, TARBALL, `blobs/sha256/${layer.digest.replace('sha256:', '')}`, file]);
    const { stdout } = await run('tar', ['-tf', file], { maxBuffer: 64 * 1024 * 1024 });
    for (const entry of stdout.split('\n')) if (entry) paths.add(entry.replace(/^\.\//, '/').replace(/\/$/, ''));
    if (paths.has('/usr/local/bin/breakwater') && launcher === undefined) {
      launcher = (await member(file, './usr/local/bin/breakwater')).toString();
    }
  }
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the image make image builds', () => {
  it('declares what the Dockerfile declares: user, working directory, entrypoint, command, environment, ports', () => {
    const stage = finalStage();
    const one = (instruction: string) => stage.filter((s) => s.instruction === instruction).at(-1)?.args;
    expect(config.config.User).toBe(one('USER'));
    expect(config.config.WorkingDir).toBe(one('WORKDIR'));
    expect(config.config.Entrypoint).toEqual(JSON.parse(one('ENTRYPOINT') ?? 'null'));
    expect(config.config.Cmd).toEqual(JSON.parse(one('CMD') ?? 'null'));
    const env = [...(one('ENV') ?? '').matchAll(/(\w+)=(\S+)/g)].map(([, name, value]) => `${name}=${value}`);
    expect(env.length).toBeGreaterThan(0);
    expect([...config.config.Env].sort()).toEqual(env.sort());
    const ports = (one('EXPOSE') ?? '').split(' ').map((p) => `${p}/tcp`);
    expect(Object.keys(config.config.ExposedPorts).sort()).toEqual(ports.sort());
  });

  it('holds what the Dockerfile copies, where it copies it, and the node binary its launcher names', () => {
    const workdir = finalStage().filter((s) => s.instruction === 'WORKDIR').at(-1)!.args;
    const copies = finalStage()
      .filter((s) => s.instruction === 'COPY')
      .map((s) => s.args.split(' ').at(-1)!)
      .map((dest) => (dest.startsWith('/') ? dest : join(workdir, dest)).replace(/\/$/, ''));
    expect(copies).toEqual(['/app/package.json', '/app/node_modules', '/app/dist', '/usr/local/bin/breakwater', '/usr/local/bin/kubectl-breakwater']);
    for (const path of copies) expect(paths, path).toContain(path);
    expect(paths).toContain('/app/dist/cmd/breakwater.js');
    expect(paths).toContain('/app/node_modules/cockatiel/package.json');
    // Production dependencies only, as `npm ci --omit=dev` leaves them.
    expect(paths).not.toContain('/app/node_modules/vitest');
    expect(paths).toContain('/nodejs/bin/node');
    expect(paths).toContain('/etc/ssl/certs/ca-certificates.crt');

    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const printf = /printf '([^']+)' > \/breakwater/.exec(dockerfile)?.[1];
    expect(printf).toBeDefined();
    expect(launcher).toBe(printf!.replaceAll('\\n', '\n'));
  });

  it('is reproducible: built again from the same tree, it has the same digest', async () => {
    const again = join(work, 'again.tar');
    const nodeVersion = /^NODE_VERSION := (\S+)$/m.exec(readFileSync(join(ROOT, 'Makefile'), 'utf8'))?.[1];
    await run('bash', [join(ROOT, 'hack/image.sh'), again], { env: { ...process.env, NODE_VERSION: nodeVersion }, timeout: 240_000 });
    expect(await manifestDigest(again)).toBe(await manifestDigest(TARBALL));
    const { stdout } = await run('sha256sum', [TARBALL, again]);
    const [first, second] = stdout.trim().split('\n').map((line) => line.split(/\s+/)[0]);
    expect(second).toBe(first);
  });
});
