// `breakwater deliveries list|show|replay|purge|export`: the durable-delivery store from the command
// line. It talks to the store itself (--store), so it works beside a running sidecar (SQLite takes
// turns with it for the write lock) or with none. Exit codes: 0 done, 1 some ids were not found or
// could not be replayed, 64 bad usage, 69 the store could not be opened, read or written.
import { DATA_DIR, ENV_DELIVERY_STORE, ENV_DELIVERY_STORE_PASSWORD } from '../src/api/names.ts';
import { isDuration, parseDuration } from '../src/api/duration.ts';
import {
  DELIVERY_STATES,
  DeliveryNotFoundError,
  DeliveryNotReplayableError,
  deliveryView,
  openStore,
  parseStoreUrl,
  StoreUnavailableError,
  StoreUrlError,
  type Delivery,
  type DeliveryState,
  type DeliveryStore,
} from '../src/delivery/index.ts';
import { HelpRequested, parseFlags, usage, UsageError, type FlagSpec } from '../src/runtime/flags.ts';
import { SIDECAR_DEFAULTS } from '../src/sidecar/options.ts';

/** EX_UNAVAILABLE from sysexits.h: the store could not be reached. */
const EXIT_STORE_UNAVAILABLE = 69;
const EXIT_PARTIAL = 1;

// The CLI finds the sidecar's store the way the sidecar does: run in its container, it needs no flags.
const STORE_FLAGS = {
  store: {
    type: 'string',
    default: process.env[ENV_DELIVERY_STORE] ?? SIDECAR_DEFAULTS.deliveryStore,
    description: `delivery store URL: sqlite:PATH, sqlite: for the file under --data-dir, or redis://HOST:PORT (also read from ${ENV_DELIVERY_STORE}; a password from ${ENV_DELIVERY_STORE_PASSWORD})`,
  },
  'data-dir': { type: 'string', default: DATA_DIR, description: 'directory of the sqlite: store' },
} as const satisfies Record<string, FlagSpec>;

const SINCE = { type: 'string', default: '', description: 'created at or after: an ISO time (2026-12-05T10:00:00Z) or an age (90m, 2h, 7d)' } as const;
const INTEGRATION = { type: 'string', default: '', description: 'only this integration' } as const;

const VERBS = {
  list: {
    summary: 'list [--integration N] [--state S] [--since T]   deliveries, oldest first, one line each',
    flags: {
      ...STORE_FLAGS,
      integration: INTEGRATION,
      state: { type: 'string', default: '', choices: DELIVERY_STATES, description: 'only deliveries in this state' },
      since: SINCE,
      limit: { type: 'integer', default: 1000, description: 'at most this many' },
    },
  },
  show: { summary: 'show ID…                                          a delivery with its last response and history, as JSON', flags: STORE_FLAGS },
  replay: {
    summary: 'replay ID… | --state dead [--since T]             send ended deliveries again: same id, same idempotency key',
    flags: {
      ...STORE_FLAGS,
      // Dead only: a delivered one is replayed by its ID, on purpose, never in bulk.
      state: { type: 'string', default: '', choices: ['dead'], description: 'replay every dead delivery (instead of IDs)' },
      since: SINCE,
      integration: INTEGRATION,
    },
  },
  purge: {
    summary: 'purge --state delivered|dead --older-than 7d      delete ended deliveries and their history',
    flags: {
      ...STORE_FLAGS,
      state: { type: 'string', default: '', choices: ['delivered', 'dead'], description: 'which ended deliveries (required)' },
      'older-than': { type: 'string', default: '', description: 'ended longer ago than this (required): 7d, 36h, 90m' },
      integration: INTEGRATION,
    },
  },
  export: {
    summary: 'export [--since T] [--integration N] [--state S]  deliveries with their history, one JSON object a line',
    flags: {
      ...STORE_FLAGS,
      since: SINCE,
      integration: INTEGRATION,
      state: { type: 'string', default: '', choices: DELIVERY_STATES, description: 'only deliveries in this state' },
    },
  },
} as const;

type Verb = keyof typeof VERBS;

const HELP = `usage: breakwater deliveries <command> [flags]

commands:
${Object.values(VERBS)
  .map((v) => `  ${v.summary}`)
  .join('\n')}

Every command takes --store URL (default sqlite: under --data-dir, or the sidecar's ${ENV_DELIVERY_STORE}). Exit codes: 0 done; 1 some ids not
found or not replayable; 64 bad usage; 69 the store could not be opened, read or written.
breakwater deliveries <command> --help lists a command's flags.`;

export async function deliveries(argv: readonly string[]): Promise<number> {
  // `deliveries export | head`: the reader has what it wanted; stop there, as a Unix filter does, without a trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(0);
  });
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    console.log(HELP);
    return verb === undefined ? 64 : 0;
  }
  if (!(verb in VERBS)) throw new UsageError(`unknown deliveries command ${JSON.stringify(verb)}\n\n${HELP}`);
  const spec = VERBS[verb as Verb];
  let parsed;
  try {
    parsed = parseFlags(spec.flags as Record<string, FlagSpec>, rest);
  } catch (error) {
    if (!(error instanceof HelpRequested)) throw error;
    console.log(`${usage(`deliveries ${verb}`, error.specs)}\n\n${spec.summary}`);
    return 0;
  }
  const flags = parsed.values as Record<string, string | number>;
  let store: DeliveryStore;
  try {
    store = openStore(parseStoreUrl(String(flags.store), String(flags['data-dir']), process.env[ENV_DELIVERY_STORE_PASSWORD]), { existing: true });
  } catch (error) {
    return failure(error);
  }
  try {
    return await run(verb as Verb, store, flags, parsed.positionals);
  } catch (error) {
    return failure(error);
  } finally {
    await store.close();
  }
}

function failure(error: unknown): number {
  if (error instanceof StoreUrlError) throw new UsageError(error.message);
  if (error instanceof StoreUnavailableError) {
    console.error(`${error.code}: ${error.message}`);
    return EXIT_STORE_UNAVAILABLE;
  }
  throw error;
}

async function run(verb: Verb, store: DeliveryStore, flags: Record<string, string | number>, ids: string[]): Promise<number> {
  const now = Date.now();
  const text = (name: string) => (flags[name] === '' || flags[name] === undefined ? undefined : String(flags[name]));
  const filter = {
    ...(text('integration') && { integration: text('integration')! }),
    ...(text('state') && { state: text('state') as DeliveryState }),
    ...(text('since') && { since: parseSince(text('since')!, now) }),
  };
  if (verb !== 'show' && verb !== 'replay' && ids.length > 0) throw new UsageError(`deliveries ${verb} takes no arguments, got ${JSON.stringify(ids[0])}`);
  switch (verb) {
    case 'list': {
      const limit = Number(flags.limit);
      if (limit < 1) throw new UsageError(`--limit must be 1 or more, got ${limit}`);
      // One more than shown, to say that there are more rather than end the list as if it were all.
      const found = await store.list({ ...filter, limit: limit + 1 });
      console.log(table(found.slice(0, limit)));
      if (found.length > limit) console.error(`… and more: the oldest ${limit} are shown; raise --limit, or narrow with --since, --state or --integration`);
      return 0;
    }
    case 'show': {
      if (ids.length === 0) throw new UsageError('usage: breakwater deliveries show ID…');
      let missing = 0;
      for (const id of ids) {
        const delivery = await store.get(id);
        if (delivery === undefined) {
          console.error(`delivery_not_found: no delivery ${JSON.stringify(id)}`);
          missing++;
        } else console.log(JSON.stringify(deliveryView(delivery, await store.history(id)), null, 2));
      }
      return missing > 0 ? EXIT_PARTIAL : 0;
    }
    case 'replay': {
      if ((ids.length > 0) === (filter.state !== undefined)) throw new UsageError('usage: breakwater deliveries replay ID… | --state dead [--since T]');
      const targets = ids.length > 0 ? ids : (await store.list(filter)).map((d) => d.id);
      let failed = 0;
      for (const id of targets) {
        try {
          const replayed = await store.replay(id, { now, sidecar: 'breakwater deliveries replay' });
          console.log(`replayed ${replayed.id} (${replayed.integration}, idempotency key ${replayed.idempotencyKey})`);
        } catch (error) {
          if (!(error instanceof DeliveryNotFoundError || error instanceof DeliveryNotReplayableError)) throw error;
          console.error(`${error.code}: ${error.message}`);
          failed++;
        }
      }
      if (targets.length === 0) console.log('nothing to replay');
      return failed > 0 ? EXIT_PARTIAL : 0;
    }
    case 'purge': {
      const state = text('state');
      const olderThan = text('older-than');
      if (state === undefined || olderThan === undefined) throw new UsageError('usage: breakwater deliveries purge --state delivered|dead --older-than 7d');
      const purged = await store.purge({
        state: state as 'delivered' | 'dead',
        endedBefore: now - parseAge('--older-than', olderThan),
        ...(filter.integration && { integration: filter.integration }),
      });
      console.log(`purged ${purged} ${state} ${purged === 1 ? 'delivery' : 'deliveries'}`);
      return 0;
    }
    case 'export': {
      for (const delivery of await store.list(filter)) console.log(JSON.stringify(deliveryView(delivery, await store.history(delivery.id))));
      return 0;
    }
  }
}

/** A duration, with days (`7d`) besides the units every other duration takes. */
function parseAge(flag: string, value: string): number {
  const days = /^(\d+)d$/.exec(value);
  if (days) return Number(days[1]) * 24 * 3_600_000;
  if (isDuration(value)) return parseDuration(value);
  throw new UsageError(`${flag} must be an age like 90m, 36h or 7d, got ${JSON.stringify(value)}`);
}

function parseSince(value: string, now: number): number {
  if (/^\d+d$/.test(value) || isDuration(value)) return now - parseAge('--since', value);
  // An ISO time with at least a day (Date.parse alone reads "5" as a year 2001 date).
  const at = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(at)) throw new UsageError(`--since must be an ISO time or an age like 2h or 7d, got ${JSON.stringify(value)}`);
  return at;
}

function table(found: readonly Delivery[]): string {
  const rows = [
    ['ID', 'INTEGRATION', 'STATE', 'ATTEMPTS', 'CREATED', 'LAST ERROR'],
    ...found.map((d) => [
      d.id,
      d.integration,
      d.deadReason ? `${d.state} (${d.deadReason})` : d.state,
      String(d.attempts),
      new Date(d.createdAt).toISOString(),
      d.lastError ?? '',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}
