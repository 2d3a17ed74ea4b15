import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type ScriptedUpstream } from '../support/upstream.ts';
import { eventually, FAST_RETRY, integration, rawRequest, startHarness, type Harness } from './harness.ts';

const MiB = 1024 * 1024;

describe('request bodies', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(integration('upload', { upstream: { url: vendor.url }, retry: { maxAttempts: 3, ...FAST_RETRY } }), {
      retryBufferBytes: MiB,
      maxRequestBodyBytes: 4 * MiB,
    });
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('streams a body larger than the retry buffer to the vendor and attempts it once', async () => {
    vendor.reset();
    vendor.script({ status: 503, body: 'busy' }, { status: 200 });
    const firstPart = Buffer.alloc(MiB + 4096, 'a');
    const lastPart = Buffer.alloc(512 * 1024, 'b');
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    async function* body() {
      yield firstPart;
      await released;
      yield lastPart;
    }
    const pending = request(h.url('/upload/files'), {
      method: 'PUT',
      headers: { 'content-length': String(firstPart.length + lastPart.length) },
      body: Readable.from(body()),
    });
    // The vendor receives bytes while the caller is still holding back the rest: nothing is buffered whole.
    const seen = await eventually(() => {
      const r = vendor.requests.at(-1);
      expect(r?.url).toBe('/files');
      expect(r!.bytes).toBeGreaterThan(0);
      return r!;
    });
    expect(seen.bytes).toBeLessThanOrEqual(firstPart.length);
    release();
    const res = await pending;
    expect(res.statusCode).toBe(503);
    expect(await res.body.text()).toBe('busy');
    expect(res.headers['x-breakwater-attempts']).toBe('1');
    await seen.done;
    expect(seen.body.length).toBe(firstPart.length + lastPart.length);
    expect(vendor.requests.filter((r) => r.url === '/files')).toHaveLength(1);
  });

  it('buffers a body within the retry buffer and replays it on retry', async () => {
    vendor.reset();
    vendor.script({ status: 503 }, { status: 201 });
    const before = vendor.requests.length;
    const payload = Buffer.alloc(64 * 1024, 'c');
    const reply = await h.call('/upload/small', { method: 'PUT', body: payload });
    expect(reply.status).toBe(201);
    expect(reply.headers['x-breakwater-attempts']).toBe('2');
    const bodies = vendor.requests.slice(before).map((r) => r.body);
    expect(bodies.map((b) => b.equals(payload))).toEqual([true, true]);
  });

  it('answers 413 request_too_large for a body over the maximum without calling the vendor', async () => {
    const before = vendor.requests.length;
    const raw = await rawRequest(h.sidecar.port, `POST /upload/big HTTP/1.1\r\nHost: a\r\nContent-Length: ${5 * MiB}\r\n\r\n`, 'x'.repeat(1024));
    expect(raw).toMatch(/^HTTP\/1.1 413 /);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'request_too_large', integration: 'upload' });
    expect(vendor.requests.length).toBe(before);
  });

  it('answers 413 for a chunked body that grows past the maximum mid-stream, aborting the vendor request it was streaming into', async () => {
    vendor.reset();
    vendor.otherwise((req, res) => {
      req.resume();
      req.on('end', () => res.end('read it all'));
    });
    const before = vendor.requests.length;
    async function* tooMuch() {
      for (let i = 0; i < 5; i++) yield Buffer.alloc(MiB, 'd');
    }
    const res = await request(h.url('/upload/chunked'), { method: 'POST', body: Readable.from(tooMuch()) });
    expect(res.statusCode).toBe(413);
    expect(await res.body.json()).toMatchObject({ error: 'request_too_large', integration: 'upload' });
    // Past the retry buffer the body was already streaming: the vendor got part of it, never all of it.
    const [seen, ...others] = vendor.requests.slice(before);
    expect(others).toEqual([]);
    await seen!.done;
    expect(seen!.aborted).toBe(true);
    expect(seen!.bytes).toBeGreaterThan(0);
    expect(seen!.bytes).toBeLessThanOrEqual(4 * MiB);
  });
});

describe('request bodies over the maximum while still buffered', () => {
  let vendor: ScriptedUpstream;
  let h: Harness;

  beforeAll(async () => {
    vendor = await startUpstream();
    h = await startHarness(integration('upload', { upstream: { url: vendor.url } }), { retryBufferBytes: MiB, maxRequestBodyBytes: 256 * 1024 });
  });
  afterAll(async () => {
    await h.close();
    await vendor.close();
  });

  it('answers 413 for a chunked body that crosses the maximum before anything was sent, and the vendor sees nothing', async () => {
    async function* tooMuch() {
      for (let i = 0; i < 8; i++) yield Buffer.alloc(64 * 1024, 'e');
    }
    const res = await request(h.url('/upload/chunked'), { method: 'POST', body: Readable.from(tooMuch()) });
    expect(res.statusCode).toBe(413);
    expect(await res.body.json()).toMatchObject({ error: 'request_too_large', integration: 'upload' });
    expect(vendor.requests).toEqual([]);
  });

  it('reads and drops the rest of a refused body, so a caller still sending keeps its connection', async () => {
    vendor.script({ status: 200, headers: { 'content-length': '4' }, body: 'next' });
    const socket = connect(h.sidecar.port, '127.0.0.1');
    const responses = responseReader(socket);
    const chunk = `${(64 * 1024).toString(16)}\r\n${'f'.repeat(64 * 1024)}\r\n`;
    socket.write(`POST /upload/chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.repeat(5)}`);
    expect(await responses.next()).toMatch(/^HTTP\/1.1 413 /);
    // The caller finishes its upload after the answer, then sends its next request on the same connection.
    socket.write(`${chunk.repeat(3)}0\r\n\r\nGET /upload/next HTTP/1.1\r\nHost: a\r\n\r\n`);
    expect(await responses.next()).toMatch(/^HTTP\/1.1 200 /);
    socket.destroy();
    expect(vendor.requests.map((r) => r.url)).toEqual(['/next']);
  });
});

/** Reads Content-Length responses off `socket` one at a time; `next()` rejects if the socket closes first. */
function responseReader(socket: Socket): { next(): Promise<string> } {
  let buffered = '';
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    buffered += d.toString('latin1');
    wake?.();
  });
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  return {
    async next() {
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        const length = end === -1 ? undefined : /content-length: (\d+)/i.exec(buffered.slice(0, end));
        if (length && buffered.length >= end + 4 + Number(length[1])) {
          const response = buffered.slice(0, end + 4 + Number(length[1]));
          buffered = buffered.slice(response.length);
          return response;
        }
        if (closed) throw new Error(`connection closed; received ${JSON.stringify(buffered.slice(0, 200))}`);
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}
