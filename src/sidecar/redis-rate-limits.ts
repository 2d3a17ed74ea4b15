// rateLimit.scope global's shared buckets, in the Redis of the delivery store: one key per integration,
// `breakwater:ratelimit:<namespace>/<name>` (or `<name>` where the config names no namespace). Each is
// GCRA, a token bucket kept as one number, the time its next token is due (the theoretical arrival
// time); one Lua script reads and advances it atomically with the Redis server's clock, so the pods'
// own clocks do not matter. The key expires when it comes back to a full bucket, so an idle one vanishes.
import { createRedisClient, runScript } from '../delivery/redis-client.ts';
import { redact } from '../delivery/location.ts';
import type { SharedBucket, SharedTake } from '../policy/global-limiter.ts';

const KEY_PREFIX = 'breakwater:ratelimit:';

// KEYS[1]: the bucket. ARGV: ms between tokens, burst, longest wait (ms) a token may be reserved for.
// Answers {1, wait}: a token, to be used after `wait` ms (0: now); or {0, wait}: none within the longest
// wait, nothing taken. Fractions travel as strings: Redis would truncate a Lua number to an integer.
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval, burst, maxWait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local due = tonumber(redis.call('GET', KEYS[1])) or now
if due < now then due = now end
local wait = due - now - (burst - 1) * interval
if wait > maxWait then return {0, string.format('%.3f', wait)} end
due = due + interval
redis.call('SET', KEYS[1], string.format('%.3f', due), 'PX', math.ceil(due - now) + 1)
if wait < 0 then wait = 0 end
return {1, string.format('%.3f', wait)}
`;

export interface SharedLimit {
  readonly requests: number;
  readonly perMs: number;
  readonly burst: number;
}

export class RedisRateLimits {
  private readonly url: string;
  private readonly password: string | undefined;
  private connection: ReturnType<typeof createRedisClient> | undefined;

  constructor(url: string, password?: string) {
    this.url = url;
    this.password = password;
  }

  /** The shared bucket of integration `name` (`namespace/name` where known); connects on first use. */
  bucket(name: string, limit: SharedLimit): SharedBucket {
    const { client, connecting } = (this.connection ??= this.connect());
    const options = { keys: [KEY_PREFIX + name], arguments: [String(limit.perMs / limit.requests), String(limit.burst)] };
    return {
      take: async (maxWaitMs: number): Promise<SharedTake> => {
        // The first connection may still be on its way (the caller bounds the wait); a lost one is not
        // waited for: the local bucket decides at once.
        if (!client.isReady) await connecting;
        if (!client.isReady) throw new Error(`Redis at ${redact(this.url)} is not connected`);
        const [taken, wait] = (await runScript(client, TAKE, { ...options, arguments: [...options.arguments, String(maxWaitMs)] })) as [number, string];
        return { taken: taken === 1, waitMs: Number(wait) };
      },
    };
  }

  private connect(): ReturnType<typeof createRedisClient> {
    const connection = createRedisClient(this.url, this.password);
    // Loaded as soon as each server (a restarted one too) is reached, so no call pays the round trip
    // of a NOSCRIPT answer within its short wait for an answer.
    connection.client.on('ready', () => void connection.client.scriptLoad(TAKE).catch(() => undefined));
    return connection;
  }

  async close(): Promise<void> {
    const client = this.connection?.client;
    if (client?.isReady) await client.close();
    else if (client?.isOpen) client.destroy();
  }
}
