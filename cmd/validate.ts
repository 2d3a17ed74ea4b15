// `breakwater validate FILE…`: every problem in every file, one line each; exit 0 only when all are valid.
import { readFile } from 'node:fs/promises';
import { formatProblem, parseIntegrations } from '../src/api/index.ts';
import { UsageError } from '../src/runtime/flags.ts';

export async function validate(argv: readonly string[]): Promise<number> {
  if (argv.length === 0) throw new UsageError('usage: breakwater validate FILE…');
  let failed = false;
  for (const file of argv) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      console.error(`${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
      failed = true;
      continue;
    }
    const { integrations, problems } = parseIntegrations(text);
    for (const problem of problems) console.error(formatProblem(file, problem));
    if (problems.length > 0) failed = true;
    else console.log(`${file}: ${integrations.length} valid ${integrations.length === 1 ? 'integration' : 'integrations'}`);
  }
  return failed ? 1 : 0;
}
