import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INVALID_DOCUMENTS, VALID_BASE } from '../../test/fixtures/invalid-documents.ts';
import { parseIntegrations } from './documents.ts';
import { validateIntegration } from './validate.ts';

describe('validateIntegration', () => {
  it('accepts the smallest valid document', () => {
    expect(validateIntegration(VALID_BASE)).toEqual({ ok: true, value: VALID_BASE });
  });

  it.each(readdirSync('examples').filter((f) => f.endsWith('.yaml')))('accepts examples/%s', (file) => {
    const { integrations, problems } = parseIntegrations(readFileSync(`examples/${file}`, 'utf8'));
    expect(problems).toEqual([]);
    expect(integrations.length).toBeGreaterThan(0);
  });

  it('accepts a delivery block with a loopback callback', () => {
    const doc = {
      ...VALID_BASE,
      spec: { ...VALID_BASE.spec, delivery: { maxAge: '1h', maxBackoff: '30s', maxBacklog: 10, retain: '48h', callback: { url: 'http://127.0.0.1:8080/deliveries' } } },
    };
    expect(validateIntegration(doc)).toEqual({ ok: true, value: doc });
    expect(validateIntegration({ ...doc, spec: { ...doc.spec, delivery: { callback: { url: 'http://localhost:3000' } } } }).ok).toBe(true);
  });

  it('has at least 30 invalid fixtures', () => {
    expect(INVALID_DOCUMENTS.length).toBeGreaterThanOrEqual(30);
  });

  it.each(INVALID_DOCUMENTS.map((f) => [f.name, f] as const))('rejects %s with the exact path and message', (_, fixture) => {
    const result = validateIntegration(fixture.doc);
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.issues).toEqual(fixture.issues);
  });

  it('reports every problem of a document, not only the first', () => {
    const result = validateIntegration({
      ...VALID_BASE,
      spec: { upstream: { url: 'ftp://x' }, retry: { maxAttempts: 0 }, timeouts: { perAttempt: '40s' }, extra: true },
    });
    expect(result.ok ? [] : result.issues.map((i) => i.path)).toEqual([
      'spec.extra',
      'spec.retry.maxAttempts',
      'spec.upstream.url',
      'spec.timeouts.perAttempt',
    ]);
  });
});
