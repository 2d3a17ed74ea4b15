// Header rules of both legs. Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and are never
// forwarded; nothing that reveals the pod (X-Forwarded-*, Via) is added towards the vendor.
import type { IncomingHttpHeaders } from 'node:http';
import { HOP_BY_HOP_HEADERS } from '../api/hop-by-hop.ts';
import { ATTEMPTS_HEADER } from '../api/names.ts';
import { randomUUID } from '../runtime/random-uuid.ts';

const HOP_BY_HOP = new Set(HOP_BY_HOP_HEADERS);
/** Also dropped towards the vendor: undici writes Host from the upstream URL and answers Expect itself. */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'host', 'expect']);

const REQUEST_ID = 'x-request-id';

export interface OutboundHeaders {
  /** Flat name/value list for undici. */
  readonly headers: string[];
  readonly requestId: string;
  /** The caller vouched that the call may be sent twice: the idempotency header carries a key. */
  readonly hasIdempotencyKey: boolean;
  /** -1 when absent. */
  readonly contentLength: number;
  readonly chunked: boolean;
}

export interface HeaderRules {
  /** Lower-cased idempotency header name. */
  readonly idempotencyHeader: string;
  /** The credential header (lower-cased), dropped from the caller's headers and written by us. */
  readonly authHeader: string | undefined;
  readonly authValue: string | undefined;
}

/** The caller's headers as the vendor gets them, in one pass over the raw list. */
export function outboundHeaders(raw: readonly string[], rules: HeaderRules): OutboundHeaders {
  const headers: string[] = [];
  let requestId: string | undefined;
  let hasIdempotencyKey = false;
  let contentLength = -1;
  let chunked = false;
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    const value = raw[i + 1]!;
    if (NOT_FORWARDED.has(lower)) {
      if (lower === 'connection') listed = connectionTokens(value, listed);
      else if (lower === 'transfer-encoding') chunked = true;
      continue;
    }
    if (lower === rules.authHeader) continue;
    if (lower === 'content-length') contentLength = Number(value);
    else if (lower === REQUEST_ID) requestId = value;
    // An empty key (`Idempotency-Key;` in curl) gives the vendor nothing to deduplicate on.
    else if (lower === rules.idempotencyHeader) hasIdempotencyKey ||= value.trim() !== '';
    headers.push(name, value);
  }
  if (listed) removeListed(headers, listed);
  if (requestId === undefined) {
    requestId = randomUUID();
    headers.push(REQUEST_ID, requestId);
  }
  if (rules.authHeader !== undefined && rules.authValue !== undefined) headers.push(rules.authHeader, rules.authValue);
  return { headers, requestId, hasIdempotencyKey, contentLength, chunked };
}

/** The vendor's response headers as the caller gets them. */
export function inboundHeaders(upstream: IncomingHttpHeaders, attempts: number): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  const connection = upstream.connection;
  const listed = typeof connection === 'string' ? connectionTokens(connection, undefined) : undefined;
  for (const name in upstream) {
    if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = upstream[name];
  }
  out[ATTEMPTS_HEADER] = String(attempts);
  return out;
}

function connectionTokens(value: string, into: Set<string> | undefined): Set<string> | undefined {
  // Nearly every vendor response says one of these, which name no header: skip the split.
  if (value === 'keep-alive' || value === 'close') return into;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive') continue;
    (into ??= new Set()).add(name);
  }
  return into;
}

function removeListed(headers: string[], listed: ReadonlySet<string>): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (listed.has(headers[i]!.toLowerCase())) headers.splice(i, 2);
  }
}
