// Runs hack/k8s-tools.sh, which builds what is missing (a no-op once cached) and prints the bin dir.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../hack/k8s-tools.sh', import.meta.url));

export async function ensureK8sTools(): Promise<string> {
  const child = spawn('bash', [SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  const binDir = out.trim().split('\n').at(-1);
  if (code !== 0 || !binDir) throw new Error(`hack/k8s-tools.sh failed (exit ${code}); see its message above`);
  return binDir;
}
