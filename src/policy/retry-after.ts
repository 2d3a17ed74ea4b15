// Retry-After (RFC 9110 §10.2.3): either delta-seconds or an HTTP-date. Anything else is ignored, as if
// the header were absent.

const DELTA_SECONDS = /^\s*(\d+)\s*$/;

/** Milliseconds the vendor asks us to wait, or undefined when the header is absent or unreadable. */
export function parseRetryAfter(value: string | readonly string[] | undefined, nowMs: number): number | undefined {
  const text = typeof value === 'string' ? value : value?.[0];
  if (text === undefined) return undefined;
  const delta = DELTA_SECONDS.exec(text);
  if (delta) return Number(delta[1]) * 1000;
  // Only a date has letters (the day and month names); Date.parse would read "-1" as a year.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

export type RetryAfterVerdict =
  | { readonly kind: 'absent' }
  | { readonly kind: 'wait'; readonly ms: number }
  /** Longer than maxRetryAfter: the retries end and the caller gets this response at once. */
  | { readonly kind: 'too-long'; readonly ms: number };

const ABSENT: RetryAfterVerdict = { kind: 'absent' };

export function retryAfterVerdict(
  value: string | readonly string[] | undefined,
  nowMs: number,
  maxMs: number,
): RetryAfterVerdict {
  const ms = parseRetryAfter(value, nowMs);
  if (ms === undefined) return ABSENT;
  return ms > maxMs ? { kind: 'too-long', ms } : { kind: 'wait', ms };
}

/** The `Retry-After` value for a wait of `ms`: whole seconds, rounded up, at least 1. */
export function formatRetryAfter(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}
