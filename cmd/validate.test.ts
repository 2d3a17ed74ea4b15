// `breakwater validate` as a user runs it: a process, its output and its exit code.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('./breakwater.ts', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../examples/demo.yaml', import.meta.url));
const run = (args: string[], input?: string) => spawnSync(process.execPath, [CLI, 'validate', ...args], { encoding: 'utf8', input, timeout: 20_000 });

describe('breakwater validate', () => {
  it('prints its usage on --help and exits 0', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: breakwater validate FILE…/);
  });

  it('refuses a flag it does not have with 64, rather than reading it as a file', () => {
    const r = run(['--strict', EXAMPLE]);
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/^Unknown option '--strict'/);
  });

  it('takes a resource as kubectl get -o yaml prints it, status and its times included', () => {
    const status = `status: { conditions: [{ type: Ready, status: "True", reason: Configured, message: "", lastTransitionTime: "2026-12-05T10:00:00Z" }] }\n`;
    const ok = run(['-'], `apiVersion: breakwater.dev/v1alpha1\nkind: ExternalIntegration\nmetadata: { name: erp }\nspec: { upstream: { url: "https://erp.example" } }\n${status}`);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const bad = run(['-'], `apiVersion: breakwater.dev/v1alpha1\nkind: ExternalIntegration\nmetadata: { name: erp }\nspec: { upstream: { url: "https://erp.example" } }\n${status.replace('12-05', '13-05')}`);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("status.conditions[0].lastTransitionTime: Expected string to match 'date-time' format");
  });

  it('reads - from standard input', () => {
    const ok = run(['-'], `apiVersion: breakwater.dev/v1alpha1\nkind: ExternalIntegration\nmetadata: { name: erp }\nspec: { upstream: { url: "https://erp.example" } }\n`);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe('<stdin>: 1 valid integration\n');
    const bad = run(['-'], `apiVersion: breakwater.dev/v1alpha1\nkind: ExternalIntegration\nmetadata: { name: erp }\nspec: {}\n`);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe('<stdin>:4:7: erp: spec.upstream: is required\n');
  });
});
