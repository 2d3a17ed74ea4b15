import { createHash } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { integration, startHarness, type Harness } from './harness.ts';

describe('streaming responses', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(integration('events', { upstream: { url: vendor.url }, timeouts: { perAttempt: '200ms', total: '300ms' } }));
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('passes the first SSE event on before the vendor has sent the last, past the deadline', async () => {
    let sendLast!: () => void;
    const lastSent = new Promise<void>((resolve) => {
      sendLast = resolve;
    });
    vendor.script((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      void lastSent.then(() => res.end('data: last\n\n'));
    });
    const res = await request(h.url('/events/stream'));
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-breakwater-attempts']).toBe('1');
    const reader = res.body[Symbol.asyncIterator]();
    const first = await reader.next();
    expect(String(first.value)).toBe('data: first\n\n');
    // Longer than timeouts.total: the deadline covers the wait for an answer, not a stream that has one.
    await new Promise((resolve) => setTimeout(resolve, 400));
    sendLast();
    let rest = '';
    for (let next = await reader.next(); !next.done; next = await reader.next()) rest += String(next.value);
    expect(rest).toBe('data: last\n\n');
  });

  it('streams a body of known length that arrives in parts, and answers it whole when it came with the headers', async () => {
    const payload = 'x'.repeat(1000);
    let sendRest!: () => void;
    const restSent = new Promise<void>((resolve) => {
      sendRest = resolve;
    });
    vendor.script((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(payload.length) });
      res.write(payload.slice(0, 400));
      void restSent.then(() => res.end(payload.slice(400)));
    });
    const partial = await request(h.url('/events/download'));
    expect(partial.headers['content-length']).toBe('1000');
    const reader = partial.body[Symbol.asyncIterator]();
    expect(String((await reader.next()).value)).toBe(payload.slice(0, 400));
    sendRest();
    let rest = '';
    for (let next = await reader.next(); !next.done; next = await reader.next()) rest += String(next.value);
    expect(rest).toBe(payload.slice(400));

    vendor.script((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(payload.length) }).end(payload);
    });
    const whole = await request(h.url('/events/download'));
    expect(whole.headers['content-length']).toBe('1000');
    expect(whole.headers['x-breakwater-attempts']).toBe('1');
    expect(await whole.body.text()).toBe(payload);

    vendor.script((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(payload.length) }).end();
    });
    const head = await request(h.url('/events/download'), { method: 'HEAD' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe('1000');
    expect(await head.body.text()).toBe('');
  });

  it('holds the vendor back while the caller does not read a large download, then delivers it intact', async () => {
    const total = 32 * 1024 * 1024;
    const vendorHash = createHash('sha256');
    let written = 0;
    vendor.script((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      const more = () => {
        while (written < total) {
          const chunk = Buffer.alloc(64 * 1024, written / 65536);
          vendorHash.update(chunk);
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    const res = await request(h.url('/events/large'));
    expect(res.statusCode).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Without backpressure through the sidecar, the vendor would have written it all by now.
    expect(written).toBeLessThan(total);
    const callerHash = createHash('sha256');
    let received = 0;
    for await (const chunk of res.body) {
      callerHash.update(chunk as Buffer);
      received += (chunk as Buffer).length;
    }
    expect(received).toBe(total);
    expect(callerHash.digest('hex')).toBe(vendorHash.digest('hex'));
  });
});
