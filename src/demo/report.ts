// What the demo prints: one line per second while traffic flows, then a summary of what the app saw
// calling the vendor directly and through Breakwater.
import { SIDECAR_ERRORS, type SidecarErrorCode } from '../api/errors.ts';
import { SUCCESS, type Outcome, type Sample } from './traffic.ts';

export type CircuitState = 'closed' | 'half-open' | 'open';

function count(samples: readonly Sample[], ...outcomes: Outcome[]): number {
  return samples.filter((s) => outcomes.includes(s.outcome)).length;
}

function succeeded(samples: readonly Sample[]): number {
  return samples.filter((s) => SUCCESS.has(s.outcome)).length;
}

function percentile(samples: readonly Sample[], p: number): number {
  if (samples.length === 0) return 0;
  const sorted = samples.map((s) => s.latencyMs).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const SIDECAR_ERROR_CODES = Object.keys(SIDECAR_ERRORS) as SidecarErrorCode[];

const ms = (n: number) => `${Math.round(n)}ms`.padStart(7);
const n = (v: number, width = 5) => String(v).padStart(width);

export const LINE_HEADER =
  '  time  vendor          │ direct:  ok  fail    p50 │ breakwater:  ok  retried  fallback  fail    p50 │ breaker';

export function line(second: number, phase: string, direct: readonly Sample[], proxied: readonly Sample[], breaker: string): string {
  const directOk = succeeded(direct);
  const proxiedFailed = proxied.length - succeeded(proxied);
  return [
    `${n(second, 5)}s  ${phase.padEnd(14)}  │`,
    `${n(directOk, 11)} ${n(direct.length - directOk)} ${ms(percentile(direct, 50))} │`,
    `${n(count(proxied, 'ok'), 15)} ${n(count(proxied, 'recovered'), 8)} ${n(count(proxied, 'fallback'), 9)} ${n(proxiedFailed)}`,
    ` ${ms(percentile(proxied, 50))} │ ${breaker}`,
  ].join('');
}

export interface Summary {
  readonly direct: readonly Sample[];
  readonly proxied: readonly Sample[];
  readonly directVendorCalls: number;
  readonly proxiedVendorCalls: number;
  readonly retries: number;
  readonly transitions: readonly string[];
}

export function summary(s: Summary): string {
  const pct = (part: number, all: number) => `${all === 0 ? 0 : Math.round((100 * part) / all)}%`;
  const rows: [string, string, string][] = [
    ['calls made by the app', String(s.direct.length), String(s.proxied.length)],
    ['answered 2xx', pct(succeeded(s.direct), s.direct.length), pct(succeeded(s.proxied), s.proxied.length)],
    ['  of which after a retry', '-', pct(count(s.proxied, 'recovered'), s.proxied.length)],
    ['  of which the fallback', '-', pct(count(s.proxied, 'fallback'), s.proxied.length)],
    ['vendor errors seen by the app', pct(count(s.direct, 'vendor_error'), s.direct.length), pct(count(s.proxied, 'vendor_error'), s.proxied.length)],
    ['app timed out or was reset', pct(count(s.direct, 'timeout', 'reset'), s.direct.length), pct(count(s.proxied, 'timeout', 'reset'), s.proxied.length)],
    ["Breakwater's own error answers", '-', pct(count(s.proxied, ...SIDECAR_ERROR_CODES), s.proxied.length)],
    ['latency p50', ms(percentile(s.direct, 50)).trim(), ms(percentile(s.proxied, 50)).trim()],
    ['latency p99', ms(percentile(s.direct, 99)).trim(), ms(percentile(s.proxied, 99)).trim()],
    ['calls that reached the vendor', String(s.directVendorCalls), String(s.proxiedVendorCalls)],
  ];
  const table = [
    `  ${''.padEnd(32)} ${'direct'.padStart(10)} ${'breakwater'.padStart(12)}`,
    ...rows.map(([label, a, b]) => `  ${label.padEnd(32)} ${a.padStart(10)} ${b.padStart(12)}`),
  ];
  return [
    ...table,
    '',
    `  retries made by Breakwater: ${s.retries}`,
    `  breaker: ${s.transitions.length === 0 ? 'never left closed' : s.transitions.join(' → ')}`,
  ].join('\n');
}
