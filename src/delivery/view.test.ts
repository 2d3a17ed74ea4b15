import { describe, expect, it } from 'vitest';
import type { Delivery } from './store.ts';
import { deliveryView } from './view.ts';

const base: Delivery = {
  id: 'd1', integration: 'erp', idempotencyKey: 'k1', expiresAt: 2_000, state: 'dead', deadReason: 'refused',
  createdAt: 0, updatedAt: 1_000, nextAttemptAt: 0, attempts: 1, endedAt: 1_000,
  request: { method: 'POST', path: '/v1/x', headers: [['authorization-like', 'never shown']], body: Buffer.from('secret body') },
};

describe('deliveryView', () => {
  it('shows a textual response as text, any other as base64, and never the request body or headers', () => {
    const json = deliveryView({ ...base, response: { status: 422, headers: { 'content-type': 'application/problem+json' }, body: Buffer.from('{"e":1}'), truncated: false } });
    expect(json).toMatchObject({ delivery: 'd1', state: 'dead', deadReason: 'refused', createdAt: '1970-01-01T00:00:00.000Z', response: { status: 422, body: '{"e":1}' } });
    expect(JSON.stringify(json)).not.toContain('secret body');
    expect(JSON.stringify(json)).not.toContain('never shown');
    const binary = deliveryView({ ...base, response: { status: 400, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from([0, 255]), truncated: true } });
    expect(binary.response).toEqual({ status: 400, headers: { 'content-type': 'application/octet-stream' }, body: 'AP8=', bodyEncoding: 'base64', truncated: true });
    const dropped = deliveryView({ ...base, response: { status: 400, headers: {}, body: null, truncated: false } });
    expect(dropped.response).toEqual({ status: 400, headers: {}, bodyDropped: true });
  });
});
