import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalIntegrationSpec } from '../../src/api/schema.ts';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { docs, FAST_RETRY, integration, sample, startHarness, type Harness } from './harness.ts';

// The vendor answers by path alone, so a retry gets what its first attempt got, and both sidecars and
// a direct call see the very same answers: /fail/<n> 503, /slow/<n> 200 after 250ms, /hold/<n> 200
// after 300ms, anything else 200. Each body names the path.
function byPath(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '';
  const answer = (status: number) => res.writeHead(status, { 'content-type': 'text/plain', 'x-vendor': 'yes' }).end(`${status} ${path}`);
  req.resume();
  if (path.startsWith('/fail/')) answer(503);
  else if (path.startsWith('/slow/')) setTimeout(answer, 250, 200);
  else if (path.startsWith('/hold/')) setTimeout(answer, 300, 200);
  else answer(200);
}

const SPECS: Record<string, Omit<ExternalIntegrationSpec, 'upstream'>> = {
  retrying: { retry: { maxAttempts: 2, ...FAST_RETRY }, circuitBreaker: { consecutiveFailures: 1000 } },
  breaking: { retry: { maxAttempts: 1 }, circuitBreaker: { consecutiveFailures: 3, halfOpenAfter: '1h' } },
  limited: { retry: { maxAttempts: 1 }, rateLimit: { requests: 3, per: '1h', whenExceeded: 'reject' } },
  crowded: { retry: { maxAttempts: 1 }, bulkhead: { maxConcurrent: 1, maxQueued: 0 } },
  slow: {
    retry: { maxAttempts: 1 },
    timeouts: { perAttempt: '100ms', total: '5s' },
    fallback: { status: 200, body: 'stand-in' },
  },
  deadline: { retry: { maxAttempts: 1 }, timeouts: { perAttempt: '150ms', total: '150ms' } },
};

/** Both sidecars' answers to one call, and the vendor's own. */
interface Answers {
  readonly direct: { status: number; text: string };
  readonly enforce: { status: number; text: string };
  readonly observe: { status: number; text: string };
}

describe('observe mode', () => {
  let vendor: ScriptedUpstream;
  let enforce: Harness;
  let observe: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    vendor.otherwise(byPath);
    // A port nothing listens on any more: every connect is refused.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const refused = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const config = (mode: 'enforce' | 'observe') =>
      docs(
        ...Object.entries(SPECS).map(([name, spec]) => integration(name, { upstream: { url: vendor.url }, mode, ...spec })),
        integration('down', { upstream: { url: refused }, mode, retry: { maxAttempts: 2, ...FAST_RETRY }, fallback: { status: 200, body: 'stand-in' } }),
      );
    enforce = await startHarness(config('enforce'));
    observe = await startHarness(config('observe'));
  });
  afterAll(async () => {
    await enforce.close();
    await observe.close();
    await vendor.close();
  });

  async function direct(path: string, method: string): Promise<{ status: number; text: string }> {
    const res = await request(vendor.url + path, { method: method as 'GET' });
    return { status: res.statusCode, text: await res.body.text() };
  }

  /** The same call through both sidecars and straight to the vendor, one after the other. */
  async function each(name: string, path: string, method = 'GET'): Promise<Answers> {
    const e = await enforce.call(`/${name}${path}`, { method });
    const o = await observe.call(`/${name}${path}`, { method });
    return { direct: await direct(path, method), enforce: { status: e.status, text: e.text }, observe: { status: o.status, text: o.text } };
  }

  const metric = async (h: Harness, series: string) => sample(await h.metrics(), series) ?? 0;
  const observed = (name: string, decision: string) => metric(observe, `breakwater_observed_decisions_total{integration="${name}",decision="${decision}"}`);

  it('answers as the vendor does and counts the retries enforce mode sends', async () => {
    const answers: Answers[] = [];
    for (let i = 0; i < 12; i++) answers.push(await each('retrying', i % 3 === 0 ? `/fail/${i}` : `/ok/${i}`, i % 4 === 1 ? 'POST' : 'GET'));
    answers.push(await each('retrying', '/fail/post', 'POST'));
    for (const a of answers) expect(a.observe).toEqual(a.direct);
    const retries = await metric(enforce, 'breakwater_retries_total{integration="retrying"}');
    // The GETs to /fail/0, 3 and 6; the POSTs (/fail/9 among them) are not retried without an idempotency key.
    expect(retries).toBe(3);
    expect(await observed('retrying', 'retry')).toBe(retries);
    expect(await metric(observe, 'breakwater_retries_total{integration="retrying"}')).toBe(0);
  });

  it('feeds the breaker, counts the calls it would fail fast, and never refuses one', async () => {
    const paths = ['/ok/1', '/fail/1', '/fail/2', '/fail/3', '/ok/2', '/fail/4', '/ok/3', '/ok/4'];
    const answers: Answers[] = [];
    for (const path of paths) answers.push(await each('breaking', path));
    for (const a of answers) expect(a.observe).toEqual(a.direct);
    expect(answers.slice(4).map((a) => a.enforce.status)).toEqual([503, 503, 503, 503]);
    const failedFast = await metric(enforce, 'breakwater_requests_total{integration="breaking",method="GET",code_class="5xx",outcome="circuit_open"}');
    expect(failedFast).toBe(4);
    expect(await observed('breaking', 'circuit_open')).toBe(failedFast);
    for (const h of [enforce, observe]) {
      expect(await metric(h, 'breakwater_circuit_transitions_total{integration="breaking",to="open"}')).toBe(1);
      expect(await metric(h, 'breakwater_circuit_state{integration="breaking"}')).toBe(2);
    }
  });

  it('takes rate-limit tokens and counts the calls enforce mode refuses', async () => {
    const answers: Answers[] = [];
    for (let i = 0; i < 6; i++) answers.push(await each('limited', `/ok/${i}`));
    for (const a of answers) expect(a.observe).toEqual(a.direct);
    expect(answers.map((a) => a.enforce.status)).toEqual([200, 200, 200, 429, 429, 429]);
    const limited = await metric(enforce, 'breakwater_rate_limited_total{integration="limited"}');
    expect(limited).toBe(3);
    expect(await observed('limited', 'rate_limited')).toBe(limited);
  });

  it('counts the calls a full bulkhead would refuse, and sends them all', async () => {
    const burst = async (h: Harness) => Promise.all([1, 2, 3].map((i) => h.call(`/crowded/hold/${i}`)));
    const before = vendor.requests.length;
    const enforced = await burst(enforce);
    const observedAnswers = await burst(observe);
    expect(enforced.map((r) => r.status).sort()).toEqual([200, 503, 503]);
    const rejected = await metric(enforce, 'breakwater_bulkhead_rejected_total{integration="crowded"}');
    expect(rejected).toBe(2);
    expect(await observed('crowded', 'bulkhead_full')).toBe(rejected);
    for (const [i, reply] of observedAnswers.entries()) expect({ status: reply.status, text: reply.text }).toEqual(await direct(`/hold/${i + 1}`, 'GET'));
    // One call of the enforce burst and all three of the observe one, and the three direct calls.
    expect(vendor.requests.length - before).toBe(1 + 3 + 3);
  });

  it('counts a GET and a POST in flight together against the one bulkhead, as enforce mode holds them', async () => {
    const rejected = () => metric(enforce, 'breakwater_bulkhead_rejected_total{integration="crowded"}');
    const [enforcedBefore, observedBefore] = [await rejected(), await observed('crowded', 'bulkhead_full')];
    // The GET may be retried and the POST (no idempotency key) may not: they take different chains.
    const both = (h: Harness) => Promise.all([h.call('/crowded/hold/get'), h.call('/crowded/hold/post', { method: 'POST' })]);
    expect((await both(enforce)).map((r) => r.status).sort()).toEqual([200, 503]);
    expect((await both(observe)).map((r) => r.status)).toEqual([200, 200]);
    expect(await rejected()).toBe(enforcedBefore + 1);
    expect(await observed('crowded', 'bulkhead_full')).toBe(observedBefore + 1);
  });

  it('lets a slow answer through and counts the timeout and the fallback enforce mode serves instead', async () => {
    const a = await each('slow', '/slow/1');
    expect(a.observe).toEqual(a.direct);
    expect(a.enforce).toEqual({ status: 200, text: 'stand-in' });
    expect(await metric(enforce, 'breakwater_fallbacks_total{integration="slow"}')).toBe(1);
    expect(await observed('slow', 'attempt_timeout')).toBe(1);
    expect(await observed('slow', 'fallback')).toBe(1);
    expect(await observed('slow', 'deadline_exceeded')).toBe(0);
  });

  it('counts an answer after timeouts.total as deadline_exceeded', async () => {
    const a = await each('deadline', '/slow/2');
    expect(a.observe).toEqual(a.direct);
    expect(a.enforce.status).toBe(504);
    const exceeded = await metric(enforce, 'breakwater_requests_total{integration="deadline",method="GET",code_class="5xx",outcome="deadline_exceeded"}');
    expect(exceeded).toBe(1);
    expect(await observed('deadline', 'deadline_exceeded')).toBe(exceeded);
  });

  it('answers upstream_unreachable itself when no answer came, counting the retry and the fallback enforce mode would have had', async () => {
    const e = await enforce.call('/down/x');
    const o = await observe.call('/down/x');
    expect({ status: e.status, text: e.text }).toEqual({ status: 200, text: 'stand-in' });
    expect(o.status).toBe(502);
    expect(o.json().error).toBe('upstream_unreachable');
    expect(o.headers['x-breakwater-attempts']).toBe('1');
    expect(await metric(enforce, 'breakwater_retries_total{integration="down"}')).toBe(1);
    expect(await observed('down', 'retry')).toBe(1);
    expect(await metric(enforce, 'breakwater_fallbacks_total{integration="down"}')).toBe(1);
    expect(await observed('down', 'fallback')).toBe(1);
  });

  it('passes the vendor\'s headers through in observe mode, where enforce mode serves the fallback\'s', async () => {
    const e = await enforce.call('/slow/slow/headers');
    const o = await observe.call('/slow/slow/headers');
    expect({ status: e.status, text: e.text, vendor: e.headers['x-vendor'], fallback: e.headers['x-breakwater-fallback'] }).toEqual({
      status: 200,
      text: 'stand-in',
      vendor: undefined,
      fallback: 'upstream_unreachable',
    });
    expect({ status: o.status, text: o.text, vendor: o.headers['x-vendor'], fallback: o.headers['x-breakwater-fallback'] }).toEqual({
      status: 200,
      text: '200 /slow/headers',
      vendor: 'yes',
      fallback: undefined,
    });
  });
});
