import { describe, expect, it } from 'vitest';
import type { StoredIntegration } from '../kube/resources.ts';
import { assess, desiredStatus, sidecarDocument, WriteMemo } from './reconcile.ts';

function stored(spec: unknown, extra: Partial<StoredIntegration> = {}): StoredIntegration {
  return {
    apiVersion: 'breakwater.dev/v1alpha1',
    kind: 'ExternalIntegration',
    metadata: { name: 'stripe', namespace: 'shop', generation: 3, uid: 'u-1', resourceVersion: '42', managedFields: [] },
    spec,
    ...extra,
  } as StoredIntegration;
}

const none = () => false;
const all = () => true;

describe('assess', () => {
  it('is ready when the spec is valid and every Secret it names exists', () => {
    const r = assess(stored({ upstream: { url: 'https://api.stripe.com' }, auth: { secretRef: { name: 'k', key: 't' } } }), all);
    expect(r.ready).toBe(true);
  });

  it('names each missing Secret with its field path, and still hands the valid document to the sidecars', () => {
    const r = assess(
      stored({
        upstream: { url: 'https://api.stripe.com', tls: { caSecretRef: { name: 'ca', key: 'ca.crt' } } },
        auth: { secretRef: { name: 'k', key: 't' } },
      }),
      none,
    );
    expect(r).toEqual({
      ready: false,
      reason: 'SecretNotFound',
      message:
        'spec.upstream.tls.caSecretRef.name: Secret "ca" not found in namespace "shop"; spec.auth.secretRef.name: Secret "k" not found in namespace "shop"; ' +
        'calls get 503 credentials_unavailable until it exists',
      document: expect.objectContaining({ metadata: { name: 'stripe', namespace: 'shop' } }),
    });
  });

  it('reports an invalid spec with the validator\'s field paths, before looking at Secrets', () => {
    const r = assess(stored({ upstream: { url: 'https://api.stripe.com' }, retry: { maxAttempts: 0 } }), none);
    expect(r.ready).toBe(false);
    if (r.ready) return;
    expect(r.reason).toBe('InvalidSpec');
    expect(r.message).toMatch(/^spec\.retry\.maxAttempts: /);
  });
});

describe('sidecarDocument', () => {
  it('keeps only what a user applies', () => {
    const doc = sidecarDocument(stored({ upstream: { url: 'https://x.example' } }, { status: { observedGeneration: 1 } }));
    expect(doc).toEqual({
      apiVersion: 'breakwater.dev/v1alpha1',
      kind: 'ExternalIntegration',
      metadata: { name: 'stripe', namespace: 'shop' },
      spec: { upstream: { url: 'https://x.example' } },
    });
  });
});

describe('desiredStatus', () => {
  const now = new Date('2026-01-02T03:04:05.678Z');

  it('describes the current generation, with the url', () => {
    const s = desiredStatus(stored({}), undefined, { ready: true, document: {} as never }, now);
    expect(s).toEqual({
      observedGeneration: 3,
      url: 'http://127.0.0.1:15080/stripe',
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Configured', message: '', observedGeneration: 3, lastTransitionTime: '2026-01-02T03:04:05Z' },
      ],
    });
  });

  it('keeps lastTransitionTime while Ready keeps its status, and moves it when it flips', () => {
    const before = '2025-12-31T00:00:00Z';
    const previous = stored({}, {
      status: { conditions: [{ type: 'Ready', status: 'False', reason: 'SecretNotFound', message: 'x', lastTransitionTime: before }] },
    });
    const stillFalse = desiredStatus(previous, previous.status, { ready: false, reason: 'InvalidSpec', message: 'y' }, now);
    expect(stillFalse.conditions?.[0]?.lastTransitionTime).toBe(before);
    const nowTrue = desiredStatus(previous, previous.status, { ready: true, document: {} as never }, now);
    expect(nowTrue.conditions?.[0]?.lastTransitionTime).toBe('2026-01-02T03:04:05Z');
  });
});

describe('WriteMemo', () => {
  const written = { observedGeneration: 3, url: 'ours' };

  it('answers with our write until the cache moves past the version we wrote on', () => {
    const memo = new WriteMemo();
    const seen = stored({}, { status: { observedGeneration: 2 } });
    memo.wroteStatus(seen, written);
    expect(memo.status(seen)).toEqual(written);
    const caughtUp = stored({}, { status: { observedGeneration: 3, url: 'cache' } });
    caughtUp.metadata.resourceVersion = '43';
    expect(memo.status(caughtUp)).toEqual({ observedGeneration: 3, url: 'cache' });
  });

  it('forgets resources that are gone', () => {
    const memo = new WriteMemo();
    const seen = stored({});
    memo.wroteStatus(seen, written);
    memo.keepOnly('shop', []);
    expect(memo.status(seen)).toBeUndefined();
  });

  it('knows a ConfigMap write the cache has not shown yet', () => {
    const memo = new WriteMemo();
    memo.wroteConfigMap('shop', undefined, 'h1');
    expect(memo.configMapPending('shop', undefined, 'h1')).toBe(true);
    expect(memo.configMapPending('shop', undefined, 'h2')).toBe(false);
    expect(memo.configMapPending('shop', { metadata: { name: 'x', resourceVersion: '9' } }, 'h1')).toBe(false);
  });

  it('forgets a ConfigMap write once the cache showed it, so a deletion after it is not taken for it', () => {
    const memo = new WriteMemo();
    memo.wroteConfigMap('shop', undefined, 'h1');
    memo.configMapShown('shop');
    expect(memo.configMapPending('shop', undefined, 'h1')).toBe(false);
  });
});
