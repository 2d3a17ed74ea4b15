// A kubeconfig with one context, cluster and user, written as JSON (which is YAML) for the client to load.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

let counter = 0;

/** Writes it into `dir` under a new name and returns its path. */
export function writeKubeconfig(dir: string, cluster: object, user: object): string {
  const file = join(dir, `config-${counter++}`);
  writeFileSync(
    file,
    JSON.stringify({
      'current-context': 'c',
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      clusters: [{ name: 'c', cluster }],
      users: [{ name: 'u', user }],
    }),
  );
  return file;
}
