import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, FAST_RETRY, integration, sample, startHarness, type Harness } from './harness.ts';

// With --log-level debug, each attempt's outcome and the reason a call was not retried are logged.
describe('retry decisions', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;
  let seen: number;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(
      docs(
        integration('vendor', {
          upstream: { url: vendor.url },
          retry: { maxAttempts: 3, ...FAST_RETRY, maxRetryAfter: '1s' },
          circuitBreaker: { consecutiveFailures: 1000 },
        }),
        integration('spent', {
          upstream: { url: vendor.url },
          retry: { maxAttempts: 3, backoff: FAST_RETRY.backoff, budget: { percent: 0, minPerSecond: 0 } },
          circuitBreaker: { consecutiveFailures: 1000 },
        }),
      ),
      { retryBufferBytes: 1024 },
      {},
      'debug',
    );
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });
  beforeEach(() => {
    vendor.reset();
    seen = h.logs.length;
  });

  /** The attempt lines logged since the test began, as `msg`. */
  const attempts = () => h.logs.slice(seen).filter((l) => typeof l.attempt === 'number' && l.msg !== 'call').map((l) => l.msg);

  it('logs each attempt and the retry that follows', async () => {
    vendor.script('destroy', { status: 503 }, { status: 200 });
    expect((await h.call('/vendor/x')).status).toBe(200);
    const lines = attempts();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^attempt 1: reset, retrying in \d+ms$/);
    expect(lines[1]).toMatch(/^attempt 2: 503, retrying in \d+ms$/);
    expect(lines[2]).toBe('attempt 3: 200');
    const first = h.logs.slice(seen).find((l) => l.attempt === 1)!;
    expect(first).toMatchObject({ level: 'debug', integration: 'vendor', method: 'GET', path: '/x', outcome: 'reset', next: 'retry' });
    expect(first.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('says when the attempts ran out', async () => {
    vendor.otherwise({ status: 503 });
    expect((await h.call('/vendor/x')).status).toBe(503);
    expect(attempts().at(-1)).toBe('attempt 3: 503, not retried: retry.maxAttempts (3) reached');
  });

  it('says a POST without an idempotency key is not retried because of its method', async () => {
    vendor.otherwise({ status: 503 });
    expect((await h.call('/vendor/x', { method: 'POST', body: '{}' })).status).toBe(503);
    expect(attempts()).toEqual(['attempt 1: 503, not retried: POST is not in retry.methods and the request carries no usable idempotency-key header']);
  });

  it('says a streamed body cannot be sent again', async () => {
    vendor.otherwise({ status: 503 });
    const reply = await h.call('/vendor/x', { method: 'PUT', headers: { 'idempotency-key': 'k' }, body: 'x'.repeat(4096) });
    expect(reply.status).toBe(503);
    expect(attempts()).toEqual(['attempt 1: 503, not retried: the body is larger than --retry-buffer and was streamed, so it cannot be sent again']);
  });

  it('says when Retry-After is longer than retry.maxRetryAfter', async () => {
    vendor.script({ status: 503, headers: { 'retry-after': '60' } }, { status: 200 });
    expect((await h.call('/vendor/x')).status).toBe(503);
    expect(attempts()).toEqual(['attempt 1: 503, not retried: Retry-After 60 is longer than retry.maxRetryAfter (1000ms)']);
  });

  it('says when the retry budget is spent, and counts it', async () => {
    vendor.otherwise({ status: 503 });
    const before = vendor.requests.length;
    expect((await h.call('/spent/x')).status).toBe(503);
    expect((await h.call('/spent/x')).status).toBe(503);
    expect(vendor.requests.length - before).toBe(2);
    expect(attempts()).toEqual([
      'attempt 1: 503, not retried: the retry budget is spent (retry.budget: 0% of the calls in the last 10s, 0/s always)',
      'attempt 1: 503, not retried: the retry budget is spent (retry.budget: 0% of the calls in the last 10s, 0/s always)',
    ]);
    const metrics = await h.metrics();
    expect(sample(metrics, 'breakwater_retry_budget_exhausted_total{integration="spent"}')).toBe(2);
    expect(sample(metrics, 'breakwater_retry_budget_exhausted_total{integration="vendor"}')).toBeUndefined();
  });
});
