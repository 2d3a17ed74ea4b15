// The sidecar's fleet reports, against a loopback stand-in for the operator's endpoint and a loopback
// vendor that fails on purpose: what is sent, when, with which token, and how a 429 is honoured.
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFleetReport, type FleetReport } from '../../src/api/fleet-report.ts';
import { docs, startHarness, integration, type Harness } from './harness.ts';

interface Received {
  readonly at: number;
  readonly authorization: string | undefined;
  readonly report: FleetReport;
}

const received: Received[] = [];
/** Answers for the next reports; 202 once they run out. */
const answers: { status: number; headers?: Record<string, string> }[] = [];
let endpoint: Server;
let vendor: Server;
let failing = false;
let harness: Harness;
let tokenFile: string;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function reportWhere(what: string, holds: (r: Received) => boolean, timeoutMs = 5_000): Promise<Received> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = received.find(holds);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no report ${what}; got ${JSON.stringify(received.map((r) => r.report.integrations))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The integration every test calls: one attempt, a breaker that opens on the second failure in a row. */
const vendorIntegration = (url: string) => integration('vendor', { upstream: { url }, retry: { maxAttempts: 1 }, circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: '60s' } });

beforeAll(async () => {
  endpoint = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const parsed = parseFleetReport(JSON.parse(body));
      if (!parsed.ok) throw new Error(`the sidecar sent a report the operator would refuse: ${parsed.message}`);
      received.push({ at: Date.now(), authorization: req.headers.authorization, report: parsed.report });
      const answer = answers.shift() ?? { status: 202 };
      res.writeHead(answer.status, answer.headers).end('{}');
    });
  });
  vendor = createServer((_req, res) => res.writeHead(failing ? 503 : 200).end());
  const [reportUrl, vendorUrl] = [await listen(endpoint), await listen(vendor)];
  tokenFile = join(await mkdtemp(join(tmpdir(), 'breakwater-token-')), 'token');
  await writeFile(tokenFile, 'token-one\n');
  harness = await startHarness(
    docs(
      vendorIntegration(vendorUrl),
      // Its Secret is not mounted (named after the pod started): only a restart brings it.
      integration('unmounted', { upstream: { url: vendorUrl }, auth: { header: 'Authorization', secretRef: { name: 'late-key', key: 'token' } } }),
    ),
    { report: { url: reportUrl, tokenFile, heartbeatMs: 2_000 } },
  );
});

afterAll(async () => {
  await harness.close();
  endpoint.close();
  vendor.close();
  await rm(join(tokenFile, '..'), { recursive: true });
});

describe('fleet reports', () => {
  it('reports at start, with the token from the file and the integration closed', async () => {
    const first = await reportWhere('at start', () => true);
    expect(first.authorization).toBe('Bearer token-one');
    expect(first.report).toMatchObject({ heartbeatSeconds: 2, sharedStore: false });
    expect(first.report.integrations).toEqual([
      { name: 'vendor', circuit: 'closed', since: expect.any(String), calls: 0, failures: 0, backlog: 0, needsRestart: false },
      { name: 'unmounted', circuit: 'closed', since: expect.any(String), calls: 0, failures: 0, backlog: 0, needsRestart: true },
    ]);
  });

  // At most one report a second, sampled every 500 ms: a change is sent within 1.5 s.
  it('reports a breaker that opens within 1.5 s, with the calls, the failures and the last error', async () => {
    expect((await harness.call('/vendor/a')).status).toBe(200);
    failing = true;
    expect((await harness.call('/vendor/b')).status).toBe(503);
    expect((await harness.call('/vendor/c')).status).toBe(503);
    const opened = Date.now();
    const report = await reportWhere('with the breaker open', (r) => r.report.integrations[0]?.circuit === 'open');
    expect(report.at - opened).toBeLessThan(1_600);
    const vendorReport = report.report.integrations[0]!;
    expect(vendorReport).toMatchObject({ calls: 3, failures: 2, lastError: { error: 'vendor_5xx' } });
    expect(Date.parse(vendorReport.since)).toBeGreaterThanOrEqual(opened - 1_000);
    expect((await harness.call('/vendor/d')).status).toBe(503);
    const later = await reportWhere('counting the circuit_open answer', (r) => r.report.integrations[0]?.lastError?.error === 'circuit_open', 4_000);
    expect(later.report.integrations[0]).toMatchObject({ circuit: 'open', calls: 4, failures: 3, since: vendorReport.since });
  });

  it('sends a heartbeat when nothing changes, with the token as rotated', async () => {
    await writeFile(tokenFile, 'token-two\n');
    const since = Date.now();
    const beat = await reportWhere('after the rotation', (r) => r.at > since, 3_500);
    expect(beat.authorization).toBe('Bearer token-two');
    const next = await reportWhere('the next heartbeat', (r) => r.at > beat.at, 3_500);
    expect(next.at - beat.at).toBeGreaterThanOrEqual(1_900);
  });

  it("waits as long as a 429's Retry-After asks", async () => {
    const count = received.length;
    answers.push({ status: 429, headers: { 'retry-after': '3' } });
    const refused = await reportWhere('to refuse', (r) => received.indexOf(r) >= count, 3_500);
    const after = await reportWhere('after the 429', (r) => r.at > refused.at, 6_000);
    expect(after.at - refused.at).toBeGreaterThanOrEqual(2_900);
  });

  it('sends a report that was not accepted again after 1 s, doubling, but never more than a heartbeat (2 s) apart', async () => {
    const count = received.length;
    answers.push({ status: 503 }, { status: 503 }, { status: 503 });
    const tries = [await reportWhere('refused first', (r) => received.indexOf(r) >= count, 3_500)];
    for (let i = 1; i <= 3; i++) tries.push(await reportWhere(`try ${i + 1}`, (r) => r.at > tries[i - 1]!.at, 4_000));
    // Sampled every 500 ms, so each wait is up to half a second longer (and arrivals jitter a little);
    // doubling without the cap would wait 4 s before the last.
    const gaps = tries.slice(1).map((t, i) => t.at - tries[i]!.at);
    expect(gaps[0], `gaps ${gaps.join(', ')} ms`).toBeGreaterThanOrEqual(900);
    expect(gaps[0], `gaps ${gaps.join(', ')} ms`).toBeLessThan(1_800);
    for (const gap of gaps.slice(1)) {
      expect(gap, `gaps ${gaps.join(', ')} ms`).toBeGreaterThanOrEqual(1_800);
      expect(gap, `gaps ${gaps.join(', ')} ms`).toBeLessThan(3_000);
    }
  });

  it('reports an integration held open by circuitBreaker.forceOpen as open, before any call', async () => {
    const since = Date.now();
    const url = `http://127.0.0.1:${(vendor.address() as AddressInfo).port}`;
    await harness.writeConfig(docs(vendorIntegration(url), integration('held', { upstream: { url }, circuitBreaker: { forceOpen: true } })));
    const report = await reportWhere('naming the held integration', (r) => r.at > since && r.report.integrations.some((i) => i.name === 'held'), 6_000);
    expect(report.report.integrations.find((i) => i.name === 'held')).toMatchObject({ circuit: 'open', calls: 0 });
  });
});
