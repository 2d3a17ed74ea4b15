// The `redis://` delivery store, shared by every sidecar that points at it. Each integration has a
// Redis Stream of deliveries ready to go and one consumer group on it; each sidecar is a consumer.
// A claim takes over pending entries (claimed by a sidecar that died or hung) whose idle time has
// reached the lease, with XAUTOCLAIM, then reads new entries with XREADGROUP. The idle time is measured
// on the Redis server: one clock for every sidecar sharing the store, so a pod whose clock runs ahead
// cannot take a delivery from a live holder. What a stream cannot hold lives beside it: a sorted set of retries waiting for their
// backoff, a list per ordering key of deliveries waiting behind the one in flight, the records, bodies
// and histories. Every change is one Lua script, so it is atomic; Redis persists it as its AOF
// settings say (appendonly yes, appendfsync always for nothing acknowledged to be lost).
// The scripts compute key names from a prefix, so the store runs on a single Redis (or a primary with
// replicas), not on Redis Cluster.
import { RESP_TYPES } from '@redis/client';
import {
  BacklogFullError,
  DeliveryNotFoundError,
  DeliveryNotReplayableError,
  LeaseLostError,
  StoreUnavailableError,
} from './errors.ts';
import { redact } from './location.ts';
import { CONNECT_WAIT_MS, createRedisClient, runScript } from './redis-client.ts';
import {
  queuedDelivery,
  type BacklogStats,
  type CallbackSettlement,
  type ClaimOptions,
  type Delivery,
  type DeliveryStore,
  type HistoryEntry,
  type ListFilter,
  type NewDelivery,
  type PurgeFilter,
  type Settlement,
  type SubmitOptions,
  type SubmitResult,
} from './store.ts';

const PREFIX = 'breakwater:';
/** A script's own refusal, as Redis relays it (it may put `ERR ` before it). */
const SCRIPT_ERROR = /(?:^|\s)(BW_[A-Z_]+)\s?(.*)$/;

// Shared by every script: ARGV[1] is the key prefix. Records are JSON (cjson); bodies are raw strings.
const COMMON = `
local P = ARGV[1]
local GROUP = 'breakwater'
local function dkey(id) return P .. 'd:' .. id end
local function ikey(i, suffix) return P .. 'i:' .. i .. ':' .. suffix end
local function load(id)
  local raw = redis.call('GET', dkey(id))
  if not raw then return nil end
  return cjson.decode(raw)
end
local function save(r) redis.call('SET', dkey(r.id), cjson.encode(r)) end
local function ensureGroup(i)
  if redis.call('EXISTS', ikey(i, 'ready')) == 0 then
    redis.call('XGROUP', 'CREATE', ikey(i, 'ready'), GROUP, '0', 'MKSTREAM')
  end
end
local function enqueue(r)
  ensureGroup(r.integration)
  redis.call('XADD', ikey(r.integration, 'ready'), '*', 'id', r.id)
end
-- Queued behind its ordering key when another delivery with that key has not ended; else ready now.
local function admit(r)
  if r.orderingKey then
    local heads = ikey(r.integration, 'ohead')
    if redis.call('HEXISTS', heads, r.orderingKey) == 1 then
      redis.call('RPUSH', ikey(r.integration, 'o:' .. r.orderingKey), r.id)
      return
    end
    redis.call('HSET', heads, r.orderingKey, r.id)
  end
  enqueue(r)
end
-- A delivery ended: the next one with its ordering key may go.
local function release_key(r)
  if not r.orderingKey then return end
  local nextId = redis.call('LPOP', ikey(r.integration, 'o:' .. r.orderingKey))
  if nextId then
    redis.call('HSET', ikey(r.integration, 'ohead'), r.orderingKey, nextId)
    redis.call('XADD', ikey(r.integration, 'ready'), '*', 'id', nextId)
  else
    redis.call('HDEL', ikey(r.integration, 'ohead'), r.orderingKey)
  end
end
local function log(id, entry) redis.call('RPUSH', P .. 'h:' .. id, cjson.encode(entry)) end
`;

const SUBMIT = `${COMMON}
local r = cjson.decode(ARGV[2])
local now = tonumber(ARGV[4])
local I = r.integration
local known = redis.call('HGET', ikey(I, 'keys'), r.idempotencyKey)
if known then
  local existing = load(known)
  if existing and existing.expiresAt > now then return {0, cjson.encode(existing)} end
end
if redis.call('ZCARD', ikey(I, 'live')) >= tonumber(ARGV[5]) then return redis.error_reply('BW_BACKLOG_FULL') end
r.seq = redis.call('INCR', P .. 'seq')
save(r)
if r.hasBody then redis.call('SET', P .. 'b:' .. r.id, ARGV[3]) end
redis.call('RPUSH', P .. 'h:' .. r.id, ARGV[6])
redis.call('ZADD', ikey(I, 'live'), r.createdAt, r.id)
redis.call('ZADD', P .. 'all', r.seq, r.id)
redis.call('HSET', ikey(I, 'keys'), r.idempotencyKey, r.id)
redis.call('SADD', P .. 'integrations', I)
admit(r)
return {1, cjson.encode(r)}
`;

const CLAIM = `${COMMON}
local I, owner, limit, leaseMs, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
ensureGroup(I)
local ready = ikey(I, 'ready')
for _, id in ipairs(redis.call('ZRANGEBYSCORE', ikey(I, 'later'), '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('XADD', ready, '*', 'id', id)
  redis.call('ZREM', ikey(I, 'later'), id)
end
local out = {}
local function drop(entry)
  redis.call('XACK', ready, GROUP, entry)
  redis.call('XDEL', ready, entry)
end
local function take(id, entry)
  local r = load(id)
  if not r or (r.state ~= 'queued' and r.state ~= 'delivering') then drop(entry) return end
  if r.state == 'delivering' and r.owner ~= owner then log(id, { at = now, event = 'taken-over', sidecar = owner, outcome = 'from ' .. tostring(r.owner) }) end
  r.state = 'delivering'
  r.owner = owner
  r.leaseUntil = now + leaseMs
  r.leaseMs = leaseMs
  r.updatedAt = now
  r.entry = entry
  save(r)
  table.insert(out, id)
end
-- Held by a sidecar that has not settled it for a whole lease: taken over. XAUTOCLAIM forgets entries
-- deleted from the stream itself (Redis 7) or returns them empty (6.2).
local cursor = '0-0'
while #out < limit do
  local page = redis.call('XAUTOCLAIM', ready, GROUP, owner, leaseMs, cursor, 'COUNT', limit - #out)
  for _, e in ipairs(page[2]) do
    if e and e[2] then take(e[2][2], e[1]) end
  end
  cursor = page[1]
  if cursor == '0-0' then break end
end
if #out < limit then
  local read = redis.call('XREADGROUP', 'GROUP', GROUP, owner, 'COUNT', limit - #out, 'STREAMS', ready, '>')
  if read then for _, e in ipairs(read[1][2]) do take(e[2][2], e[1]) end end
end
return out
`;

// ARGV: prefix, id, owner, settlement JSON, response body (or ''), history entries JSON.
const SETTLE = `${COMMON}
local id, owner, s = ARGV[2], ARGV[3], cjson.decode(ARGV[4])
local r = load(id)
if not r then return redis.error_reply('BW_NOT_FOUND') end
if r.state ~= 'delivering' or r.owner ~= owner then return redis.error_reply('BW_LEASE_LOST') end
local I = r.integration
local ready = ikey(I, 'ready')
redis.call('XACK', ready, GROUP, r.entry)
redis.call('XDEL', ready, r.entry)
r.entry = nil
r.owner = nil
r.leaseUntil = nil
r.leaseMs = nil
r.updatedAt = s.at
if s.attempt then
  r.attempts = r.attempts + 1
  log(id, { at = s.at, event = 'attempt', sidecar = owner, attempt = r.attempts, outcome = s.attempt.outcome, durationMs = s.attempt.durationMs })
end
if s.error then r.lastError = s.error end
if s.response then
  r.response = s.response
  if s.response.hasBody then redis.call('SET', P .. 'r:' .. id, ARGV[5]) else redis.call('DEL', P .. 'r:' .. id) end
end
local state = s.next.state
r.state = state
if state == 'queued' then
  r.nextAttemptAt = s.next.at
  redis.call('ZADD', ikey(I, 'later'), s.next.at, id)
  log(id, { at = s.at, event = s.attempt and 'retry' or 'released', sidecar = owner })
else
  r.endedAt = s.at
  redis.call('ZREM', ikey(I, 'live'), id)
  redis.call('ZADD', ikey(I, 'ended'), s.at, id)
  if state == 'dead' then
    r.deadReason = s.next.reason
    redis.call('SADD', ikey(I, 'dead'), id)
    log(id, { at = s.at, event = 'dead', sidecar = owner, outcome = s.next.reason })
  else
    log(id, { at = s.at, event = 'delivered', sidecar = owner })
  end
  if r.callbackUrl then
    r.callback = { state = 'pending', attempts = 0, nextAt = s.at }
    redis.call('ZADD', ikey(I, 'cb'), s.at, id)
  end
  release_key(r)
end
save(r)
return 'OK'
`;

const REPLAY = `${COMMON}
local id, now, sidecar = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local r = load(id)
if not r then return redis.error_reply('BW_NOT_FOUND') end
if not r.endedAt then return redis.error_reply('BW_NOT_REPLAYABLE delivery ' .. id .. ' is ' .. r.state .. ', not ended') end
if r.bodiesDropped then return redis.error_reply('BW_NOT_REPLAYABLE delivery ' .. id .. ' ended too long ago: its request body was dropped (delivery.retain)') end
local I = r.integration
r.expiresAt = now + (r.expiresAt - r.createdAt)
r.state = 'queued'
r.nextAttemptAt = now
r.updatedAt = now
r.endedAt = nil
r.deadReason = nil
r.callback = nil
redis.call('SREM', ikey(I, 'dead'), id)
redis.call('ZREM', ikey(I, 'ended'), id)
redis.call('ZREM', ikey(I, 'cb'), id)
redis.call('ZADD', ikey(I, 'live'), r.createdAt, id)
redis.call('HSET', ikey(I, 'keys'), r.idempotencyKey, id)
save(r)
log(id, { at = now, event = 'replayed', sidecar = sidecar })
admit(r)
return 'OK'
`;

// ARGV: prefix, integration, state or '', ended before, 'purge' | 'compact'.
const SWEEP = `${COMMON}
local I, state, before, mode = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local n = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', ikey(I, 'ended'), '-inf', '(' .. before)) do
  local r = load(id)
  if r and (state == '' or r.state == state) then
    if mode == 'purge' then
      redis.call('DEL', dkey(id), P .. 'b:' .. id, P .. 'r:' .. id, P .. 'h:' .. id)
      redis.call('ZREM', ikey(I, 'ended'), id)
      redis.call('ZREM', ikey(I, 'cb'), id)
      redis.call('ZREM', P .. 'all', id)
      redis.call('SREM', ikey(I, 'dead'), id)
      if redis.call('HGET', ikey(I, 'keys'), r.idempotencyKey) == id then redis.call('HDEL', ikey(I, 'keys'), r.idempotencyKey) end
      n = n + 1
    elseif not r.bodiesDropped then
      redis.call('DEL', P .. 'b:' .. id, P .. 'r:' .. id)
      r.bodiesDropped = true
      save(r)
      n = n + 1
    end
  end
end
return n
`;

const STATS = `${COMMON}
local I = ARGV[2]
local oldest = redis.call('ZRANGE', ikey(I, 'live'), 0, 0, 'WITHSCORES')
return { redis.call('ZCARD', ikey(I, 'live')), oldest[2] or '', redis.call('SCARD', ikey(I, 'dead')) }
`;

// The earliest of: a retry's time, the oldest entry no consumer has read, the end of a pending entry's
// lease (its idle time on the server reaching the lease it was claimed under).
const NEXT_DUE = `${COMMON}
local I, now = ARGV[2], tonumber(ARGV[3])
ensureGroup(I)
local ready = ikey(I, 'ready')
local best = nil
local function consider(at) if at and (best == nil or at < best) then best = at end end
local later = redis.call('ZRANGE', ikey(I, 'later'), 0, 0, 'WITHSCORES')
if later[2] then consider(tonumber(later[2])) end
local groups = redis.call('XINFO', 'GROUPS', ready)
local last = '0-0'
for _, g in ipairs(groups) do
  local info = {}
  for k = 1, #g, 2 do info[g[k]] = g[k + 1] end
  if info['name'] == GROUP then last = info['last-delivered-id'] end
end
local unread = redis.call('XRANGE', ready, '(' .. last, '+', 'COUNT', 1)
if #unread > 0 then
  local r = load(unread[1][2][2])
  consider(r and r.nextAttemptAt or 0)
end
for _, p in ipairs(redis.call('XPENDING', ready, GROUP, '-', '+', 1000)) do
  local found = redis.call('XRANGE', ready, p[1], p[1])
  if #found > 0 then
    local r = load(found[1][2][2])
    if r and r.leaseMs then consider(now + math.max(0, r.leaseMs - p[3])) end
  end
end
return best and tostring(best) or ''
`;

const CLAIM_CALLBACKS = `${COMMON}
local I, owner, limit, leaseMs, now = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', ikey(I, 'cb'), '-inf', now)) do
  if #out >= limit then break end
  local r = load(id)
  if r and r.callback and r.callback.state == 'pending' and (r.callback.leaseUntil or 0) <= now then
    r.callback.owner = owner
    r.callback.leaseUntil = now + leaseMs
    save(r)
    table.insert(out, id)
  end
end
return out
`;

const SETTLE_CALLBACK = `${COMMON}
local id, owner, s = ARGV[2], ARGV[3], cjson.decode(ARGV[4])
local r = load(id)
if not r then return redis.error_reply('BW_NOT_FOUND') end
if not r.callback or r.callback.state ~= 'pending' or r.callback.owner ~= owner then return redis.error_reply('BW_LEASE_LOST') end
local attempts = r.callback.attempts + 1
log(id, { at = s.at, event = 'callback', sidecar = owner, attempt = attempts, outcome = s.outcome, durationMs = s.durationMs })
r.callback = { state = s.next.state, attempts = attempts, nextAt = s.next.at or r.callback.nextAt }
r.updatedAt = s.at
if s.next.state == 'pending' then redis.call('ZADD', ikey(r.integration, 'cb'), s.next.at, id) else redis.call('ZREM', ikey(r.integration, 'cb'), id) end
save(r)
return 'OK'
`;

/** A record as the scripts keep it: the delivery without its bodies, and their bookkeeping. */
interface DeliveryRecord extends Omit<Delivery, 'request' | 'response' | 'callback'> {
  readonly method: string;
  readonly path: string;
  /** cjson writes an empty list as an object. */
  readonly headers: [string, string][] | Record<string, never>;
  readonly hasBody: boolean;
  readonly bodiesDropped?: boolean;
  readonly response?: { status: number; headers: Record<string, string> | []; truncated: boolean; hasBody: boolean };
  readonly callback?: { state: NonNullable<Delivery['callback']>['state']; attempts: number; nextAt: number };
}

export class RedisStore implements DeliveryStore {
  readonly url: string;
  private readonly client;
  private readonly connecting: Promise<unknown>;
  /** Why the client is not connected, as it last said. */
  private readonly lastError: () => string | undefined;

  constructor(url: string, password?: string) {
    this.url = url;
    // A call made while Redis is away fails at once: 503 store_unavailable.
    const { client, connecting, lastError } = createRedisClient(url, password);
    this.lastError = lastError;
    this.client = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    this.connecting = connecting;
  }

  async submit(d: NewDelivery, o: SubmitOptions): Promise<SubmitResult> {
    const record = {
      id: d.id,
      integration: d.integration,
      idempotencyKey: d.idempotencyKey,
      ...(d.orderingKey !== undefined && { orderingKey: d.orderingKey }),
      method: d.request.method,
      path: d.request.path,
      headers: d.request.headers,
      hasBody: d.request.body !== null,
      ...(d.callbackUrl !== undefined && { callbackUrl: d.callbackUrl }),
      expiresAt: d.expiresAt,
      state: 'queued',
      createdAt: o.now,
      updatedAt: o.now,
      nextAttemptAt: o.now,
      attempts: 0,
    };
    const history: HistoryEntry = { at: o.now, event: 'queued', sidecar: o.sidecar };
    const [created, json] = (await this.run(SUBMIT, [JSON.stringify(record), d.request.body ?? '', String(o.now), String(o.maxBacklog), JSON.stringify(history)], d.integration, o.maxBacklog)) as [number, Buffer];
    if (created === 1) return { delivery: queuedDelivery(d, o.now), created: true };
    const existing = JSON.parse(json.toString()) as DeliveryRecord;
    return { delivery: (await this.get(existing.id))!, created: false };
  }

  async get(id: string): Promise<Delivery | undefined> {
    const [raw, body, responseBody] = (await this.guard(() => this.client.mGet([`${PREFIX}d:${id}`, `${PREFIX}b:${id}`, `${PREFIX}r:${id}`]))) as (Buffer | null)[];
    return raw ? toDelivery(JSON.parse(raw.toString()) as DeliveryRecord, body ?? null, responseBody ?? null) : undefined;
  }

  async history(id: string): Promise<HistoryEntry[]> {
    const lines = (await this.guard(() => this.client.lRange(`${PREFIX}h:${id}`, 0, -1))) as unknown as Buffer[];
    return lines.map((line) => toHistory(JSON.parse(line.toString()) as HistoryEntry));
  }

  async list(filter: ListFilter): Promise<Delivery[]> {
    const ids = (await this.guard(() => this.client.zRange(`${PREFIX}all`, 0, -1))) as unknown as Buffer[];
    const out: Delivery[] = [];
    for (const id of ids) {
      if (filter.limit !== undefined && out.length >= filter.limit) break;
      const d = await this.get(id.toString());
      if (d === undefined) continue;
      if (filter.integration !== undefined && d.integration !== filter.integration) continue;
      if (filter.state !== undefined && d.state !== filter.state) continue;
      if (filter.since !== undefined && d.createdAt < filter.since) continue;
      out.push(d);
    }
    return out;
  }

  async claim(integration: string, o: ClaimOptions): Promise<Delivery[]> {
    const ids = (await this.run(CLAIM, [integration, o.owner, String(o.limit), String(o.leaseMs), String(o.now)])) as Buffer[];
    return this.getAll(ids);
  }

  async settle(id: string, owner: string, s: Settlement): Promise<Delivery> {
    const next = s.next;
    const settlement = {
      at: s.at,
      ...(s.attempt && { attempt: { outcome: s.attempt.outcome, durationMs: Math.round(s.attempt.durationMs) } }),
      next,
      ...(next.state !== 'delivered' && next.error !== undefined && { error: next.error }),
      ...(s.response && {
        response: { status: s.response.status, headers: s.response.headers, truncated: s.response.truncated, hasBody: s.response.body !== null },
      }),
    };
    await this.run(SETTLE, [id, owner, JSON.stringify(settlement), s.response?.body ?? '']);
    return (await this.get(id))!;
  }

  async replay(id: string, o: { readonly now: number; readonly sidecar: string }): Promise<Delivery> {
    await this.run(REPLAY, [id, String(o.now), o.sidecar]);
    return (await this.get(id))!;
  }

  async purge(filter: PurgeFilter): Promise<number> {
    const integrations =
      filter.integration !== undefined
        ? [filter.integration]
        : ((await this.guard(() => this.client.sMembers(`${PREFIX}integrations`))) as unknown as Buffer[]).map(String);
    let purged = 0;
    for (const integration of integrations) purged += (await this.run(SWEEP, [integration, filter.state, String(filter.endedBefore), 'purge'])) as number;
    return purged;
  }

  async compact(integration: string, endedBefore: number): Promise<number> {
    return (await this.run(SWEEP, [integration, '', String(endedBefore), 'compact'])) as number;
  }

  async stats(integration: string): Promise<BacklogStats> {
    const [backlog, oldest, dead] = (await this.run(STATS, [integration])) as [number, Buffer, number];
    const oldestText = oldest.toString();
    return { backlog, oldestCreatedAt: oldestText === '' ? undefined : Number(oldestText), dead };
  }

  async nextDueAt(integration: string, now: number): Promise<number | undefined> {
    const at = ((await this.run(NEXT_DUE, [integration, String(now)])) as Buffer).toString();
    return at === '' ? undefined : Number(at);
  }

  async claimCallbacks(integration: string, o: ClaimOptions): Promise<Delivery[]> {
    const ids = (await this.run(CLAIM_CALLBACKS, [integration, o.owner, String(o.limit), String(o.leaseMs), String(o.now)])) as Buffer[];
    return this.getAll(ids);
  }

  async settleCallback(id: string, owner: string, s: CallbackSettlement): Promise<Delivery> {
    await this.run(SETTLE_CALLBACK, [id, owner, JSON.stringify({ ...s, durationMs: Math.round(s.durationMs) })]);
    return (await this.get(id))!;
  }

  async close(): Promise<void> {
    // A server that is away would keep a graceful close (or the connect still retrying) waiting.
    if (this.client.isReady) await this.client.close();
    else if (this.client.isOpen) this.client.destroy();
  }

  private async getAll(ids: readonly Buffer[]): Promise<Delivery[]> {
    const out: Delivery[] = [];
    for (const id of ids) {
      const d = await this.get(id.toString());
      if (d) out.push(d);
    }
    return out;
  }

  /** Runs a script with the key prefix first; maps its error replies to the typed errors. */
  private async run(script: string, args: readonly (string | Buffer)[], integration = '', maxBacklog = 0): Promise<unknown> {
    try {
      const options = { arguments: [PREFIX, ...args] };
      return await this.guard(() => runScript(this.client, script, options));
    } catch (error) {
      const [, code, detail = ''] = SCRIPT_ERROR.exec((error as Error).message) ?? [];
      if (code === 'BW_BACKLOG_FULL') throw new BacklogFullError(integration, maxBacklog);
      if (code === 'BW_NOT_FOUND') throw new DeliveryNotFoundError(String(args[0]));
      if (code === 'BW_LEASE_LOST') throw new LeaseLostError(String(args[0]), String(args[1]));
      if (code === 'BW_NOT_REPLAYABLE') throw new DeliveryNotReplayableError(detail);
      throw error;
    }
  }

  /** Waits briefly for a connection being made; anything the server or the socket throws is unavailability. */
  private async guard<T>(body: () => Promise<T>): Promise<T> {
    if (!this.client.isReady) {
      await Promise.race([this.connecting, new Promise((resolve) => setTimeout(resolve, CONNECT_WAIT_MS))]);
      if (!this.client.isReady) {
        const why = this.lastError();
        throw new StoreUnavailableError(`the delivery store at ${redact(this.url)} cannot be reached${why ? `: ${why}` : ''}`);
      }
    }
    try {
      return await body();
    } catch (error) {
      if (SCRIPT_ERROR.test((error as Error).message)) throw error;
      throw new StoreUnavailableError(`the delivery store at ${redact(this.url)} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}

function toDelivery(r: DeliveryRecord, body: Buffer | null, responseBody: Buffer | null): Delivery {
  return {
    id: r.id,
    integration: r.integration,
    idempotencyKey: r.idempotencyKey,
    ...(r.orderingKey !== undefined && { orderingKey: r.orderingKey }),
    request: { method: r.method, path: r.path, headers: Array.isArray(r.headers) ? r.headers : [], body: r.hasBody && !r.bodiesDropped ? (body ?? Buffer.alloc(0)) : null },
    ...(r.callbackUrl !== undefined && { callbackUrl: r.callbackUrl }),
    expiresAt: r.expiresAt,
    state: r.state,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    nextAttemptAt: r.nextAttemptAt,
    attempts: r.attempts,
    ...(r.lastError !== undefined && { lastError: r.lastError }),
    ...(r.response && {
      response: {
        status: r.response.status,
        headers: Array.isArray(r.response.headers) ? {} : r.response.headers,
        body: r.response.hasBody && !r.bodiesDropped ? (responseBody ?? Buffer.alloc(0)) : null,
        truncated: r.response.truncated,
      },
    }),
    ...(r.endedAt !== undefined && { endedAt: r.endedAt }),
    ...(r.deadReason !== undefined && { deadReason: r.deadReason }),
    ...(r.owner !== undefined && { owner: r.owner, leaseUntil: r.leaseUntil! }),
    ...(r.callback && { callback: { state: r.callback.state, attempts: r.callback.attempts, nextAt: r.callback.nextAt } }),
  };
}

function toHistory(entry: HistoryEntry): HistoryEntry {
  return {
    at: entry.at,
    event: entry.event,
    sidecar: entry.sidecar,
    ...(entry.attempt !== undefined && { attempt: entry.attempt }),
    ...(entry.outcome !== undefined && { outcome: entry.outcome }),
    ...(entry.durationMs !== undefined && { durationMs: entry.durationMs }),
  };
}
