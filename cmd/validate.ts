// `breakwater validate FILE…`: every problem in every file, one line each; exit 0 only when all are valid.
import { readFile } from 'node:fs/promises';
import { text as streamText } from 'node:stream/consumers';
import { formatProblem, parseIntegrations } from '../src/api/index.ts';
import { HelpRequested, parseFlags, UsageError } from '../src/runtime/flags.ts';

const USAGE = `usage: breakwater validate FILE…   (- reads standard input)
  checks ExternalIntegration files as kubectl apply would; one line per problem with its line,
  column and field path. Exit 0 when every file is valid, 1 when any is not, 64 for bad usage.`;

export async function validate(argv: readonly string[]): Promise<number> {
  let files: string[];
  try {
    // No flags of its own: any is refused, and a file whose name starts with "-" goes after "--".
    files = parseFlags({}, argv).positionals;
  } catch (error) {
    if (error instanceof HelpRequested) {
      console.log(USAGE);
      return 0;
    }
    throw error instanceof UsageError ? new UsageError(`${error.message}\n\n${USAGE}`) : error;
  }
  if (files.length === 0) throw new UsageError(USAGE);
  let failed = false;
  for (const arg of files) {
    const file = arg === '-' ? '<stdin>' : arg;
    let text: string;
    try {
      text = arg === '-' ? await streamText(process.stdin) : await readFile(arg, 'utf8');
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
