// Command-line flags where every flag can also come from `BREAKWATER_<FLAG>` (docs/design.md), the way a pod
// spec sets them. An unknown flag or a bad value is a usage error, reported before anything binds.
import { parseArgs } from 'node:util';
import { isDuration, parseDuration } from '../api/duration.ts';
import { flagEnvVar } from '../api/names.ts';

/** A `duration` flag is written like `15s` and read as milliseconds; a `port` is 0 (any free one) to 65535. */
export type FlagType = 'string' | 'integer' | 'port' | 'boolean' | 'duration';

export interface FlagSpec {
  readonly type: FlagType;
  /** A duration's default is written as a user would write it, so help shows `5m` rather than 300000. */
  readonly default: string | number | boolean;
  readonly description: string;
  /** For a string flag, the only values it accepts. */
  readonly choices?: readonly string[];
}

type ValueOf<F extends FlagSpec> = F['type'] extends 'integer' | 'port' | 'duration'
  ? number
  : F['type'] extends 'boolean'
    ? boolean
    : F extends { readonly choices: readonly (infer C)[] }
      ? C
      : string;
export type FlagValues<S extends Record<string, FlagSpec>> = { -readonly [K in keyof S]: ValueOf<S[K]> };

const MAX_PORT = 65535;

export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'usage';
  /** EX_USAGE from sysexits.h. */
  readonly exitCode = 64;
}

/** `--help` on a subcommand: the dispatcher prints `usage(command, specs)` and exits 0. */
export class HelpRequested extends Error {
  override readonly name = 'HelpRequested';
  readonly specs: Record<string, FlagSpec>;
  constructor(specs: Record<string, FlagSpec>) {
    super('help requested');
    this.specs = specs;
  }
}

export function parseFlags<S extends Record<string, FlagSpec>>(
  specs: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { values: FlagValues<S>; positionals: string[] } {
  if (argv.includes('--help') || argv.includes('-h')) throw new HelpRequested(specs);
  let parsed;
  try {
    parsed = parseArgs({
      args: spellBooleans(specs, argv),
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(Object.keys(specs).map((name) => [name, { type: 'string' }])) as Record<string, { type: 'string' }>,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values: Record<string, string | number | boolean> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = parsed.values[name] ?? env[flagEnvVar(name)];
    if (raw !== undefined) values[name] = coerce(name, spec, raw);
    else values[name] = spec.type === 'duration' ? parseDuration(String(spec.default)) : spec.default;
  }
  return { values: values as FlagValues<S>, positionals: parsed.positionals };
}

/**
 * Boolean flags are accepted as `--leader-elect`, `--leader-elect=false` and `--leader-elect false`
 * (docs/design.md writes `--leader-elect true`), so each is rewritten to the `=` form and parsed as a string.
 */
function spellBooleans(specs: Record<string, FlagSpec>, argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const spec = arg.startsWith('--') ? specs[arg.slice(2)] : undefined;
    if (spec?.type !== 'boolean') {
      out.push(arg);
      continue;
    }
    const next = argv[i + 1];
    if (next === 'true' || next === 'false') {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(`${arg}=true`);
  }
  return out;
}

function coerce(name: string, spec: FlagSpec, raw: string): string | number | boolean {
  if (spec.type === 'boolean') {
    if (raw === 'true' || raw === 'false') return raw === 'true';
    throw new UsageError(`--${name} must be true or false, got ${JSON.stringify(raw)}`);
  }
  if (spec.type === 'integer' || spec.type === 'port') {
    const n = raw.trim() === '' ? NaN : Number(raw);
    const max = spec.type === 'port' ? MAX_PORT : Number.MAX_SAFE_INTEGER;
    if (Number.isInteger(n) && n >= 0 && n <= max) return n;
    throw new UsageError(
      spec.type === 'port'
        ? `--${name} must be a port number from 0 (any free port) to ${MAX_PORT}, got ${JSON.stringify(raw)}`
        : `--${name} must be a whole number, 0 or more, got ${JSON.stringify(raw)}`,
    );
  }
  if (spec.type === 'duration') {
    if (!isDuration(raw)) throw new UsageError(`--${name} must be a duration like ${spec.default}, got ${JSON.stringify(raw)}`);
    return parseDuration(raw);
  }
  if (spec.choices && !spec.choices.includes(raw)) {
    throw new UsageError(`--${name} must be one of ${spec.choices.join(', ')}, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

export function usage(command: string, specs: Record<string, FlagSpec>): string {
  const lines = Object.entries(specs).map(
    ([name, s]) =>
      `  --${name.padEnd(18)} ${s.description} (${s.choices ? `one of ${s.choices.join(', ')}; ` : ''}default ${JSON.stringify(s.default)}; env ${flagEnvVar(name)})`,
  );
  return [`usage: breakwater ${command} [flags]`, ...lines].join('\n');
}
