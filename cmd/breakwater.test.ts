// The dispatcher as a user meets it: no command, help, an unknown command.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../src/runtime/version.ts';

const CLI = fileURLToPath(new URL('./breakwater.ts', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('breakwater', () => {
  it('without a command prints its usage where errors go and exits 64; --help prints it and exits 0', () => {
    const bare = run();
    expect(bare.status).toBe(64);
    expect(bare.stdout).toBe('');
    expect(bare.stderr).toMatch(/^usage: breakwater <command> \[flags\]/);
    const help = run('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: breakwater <command> \[flags\]/);
  });

  it('takes help COMMAND for COMMAND --help', () => {
    const help = run('help', 'validate');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: breakwater validate FILE…/);
    // A command whose flags print the usage, named as the command, not as `help`.
    const sidecar = run('help', 'sidecar');
    expect(sidecar.status).toBe(0);
    expect(sidecar.stdout).toMatch(/^usage: breakwater sidecar \[flags\]\n {2}--config /);
    expect(sidecar.stdout).toBe(run('sidecar', '--help').stdout);
  });

  it('prints its release on version and --version', () => {
    for (const args of [['version'], ['--version']]) {
      const r = run(...args);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`breakwater ${VERSION}\n`);
    }
  });

  it('refuses an unknown command with 64', () => {
    const r = run('frobnicate');
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/^unknown command "frobnicate"/);
  });
});
