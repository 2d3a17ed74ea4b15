// Command-line flags where every flag can also come from `BREAKWATER_<FLAG>` (DESIGN), the way a pod
// spec sets them. An unknown flag or a bad value is a usage error, reported before anything binds.
import { parseArgs } from 'node:util';
import { flagEnvVar } from '../api/names.ts';

export type FlagType = 'string' | 'integer' | 'boolean';

export interface FlagSpec {
  readonly type: FlagType;
  readonly default: string | number | boolean;
  readonly description: string;
}

type ValueOf<T extends FlagType> = T extends 'integer' ? number : T extends 'boolean' ? boolean : string;
export type FlagValues<S extends Record<string, FlagSpec>> = { -readonly [K in keyof S]: ValueOf<S[K]['type']> };

export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'usage';
  /** EX_USAGE from sysexits.h. */
  readonly exitCode = 64;
}

export function parseFlags<S extends Record<string, FlagSpec>>(
  specs: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { values: FlagValues<S>; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(
        Object.entries(specs).map(([name, spec]) => [name, { type: spec.type === 'boolean' ? 'boolean' : 'string' }]),
      ) as Record<string, { type: 'string' | 'boolean' }>,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values: Record<string, string | number | boolean> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = parsed.values[name] ?? env[flagEnvVar(name)];
    values[name] = raw === undefined ? spec.default : coerce(name, spec.type, raw);
  }
  return { values: values as FlagValues<S>, positionals: parsed.positionals };
}

function coerce(name: string, type: FlagType, raw: string | boolean): string | number | boolean {
  if (type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === 'false') return raw === 'true';
    throw new UsageError(`--${name} must be true or false, got ${JSON.stringify(raw)}`);
  }
  if (type === 'integer') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number, got ${JSON.stringify(raw)}`);
    return n;
  }
  return String(raw);
}

export function usage(command: string, specs: Record<string, FlagSpec>): string {
  const lines = Object.entries(specs).map(
    ([name, s]) => `  --${name.padEnd(18)} ${s.description} (default ${JSON.stringify(s.default)}; env ${flagEnvVar(name)})`,
  );
  return [`usage: breakwater ${command} [flags]`, ...lines].join('\n');
}
