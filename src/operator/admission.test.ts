import type { V1Pod } from '@kubernetes/client-node';
import jsonPatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { ANNOTATION_INJECT, ANNOTATION_INTEGRATIONS } from '../api/names.ts';
import type { ExternalIntegration } from '../api/schema.ts';
import { admit, AdmissionDecodeError, decodeReview, type AdmissionContext, type AdmissionRequest, type AdmitOptions } from './admission.ts';
import { inject } from './inject.ts';
import { TEST_INJECT_SETTINGS } from '../../test/fixtures/inject-settings.ts';

const SETTINGS = TEST_INJECT_SETTINGS;

const STRIPE: ExternalIntegration = {
  apiVersion: 'breakwater.dev/v1alpha1',
  kind: 'ExternalIntegration',
  metadata: { name: 'stripe', namespace: 'shop' },
  spec: { upstream: { url: 'https://api.stripe.com' }, auth: { secretRef: { name: 'stripe-key', key: 'token' } } },
};
const CONTEXT: AdmissionContext = { namespace: { metadata: { name: 'shop' } }, integrations: [STRIPE] };
const OPTIONS: AdmitOptions = { lookup: () => CONTEXT, settings: SETTINGS };

function pod(annotations: Record<string, string>): V1Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'app-', annotations }, spec: { containers: [{ name: 'app', image: 'a' }] } };
}

function request(object: unknown, operation = 'CREATE'): AdmissionRequest {
  return { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'shop', operation, object };
}

function decodePatch(patch: string | undefined): jsonPatch.Operation[] {
  return JSON.parse(Buffer.from(patch ?? '', 'base64').toString('utf8')) as jsonPatch.Operation[];
}

describe('decodeReview', () => {
  it('accepts an AdmissionReview v1 with a request', () => {
    const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: request(pod({})) });
    expect(decodeReview(body).uid).toBe('u-1');
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['an array', '[]', /expected apiVersion/],
    ['v1beta1', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }), /expected apiVersion/],
    ['no request', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /request is missing/],
    ['no uid', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { operation: 'CREATE' } }), /uid/],
  ])('rejects %s with a reason', (_what, body, reason) => {
    expect(() => decodeReview(body)).toThrow(AdmissionDecodeError);
    expect(() => decodeReview(body)).toThrow(reason);
  });
});

describe('admit', () => {
  it('answers with a base64 JSON Patch that turns the pod into what inject() makes', async () => {
    const original = pod({ [ANNOTATION_INJECT]: 'true' });
    const { response, result, reason } = await admit(request(original), OPTIONS);
    expect({ result, reason }).toEqual({ result: 'injected', reason: 'injected' });
    expect(response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    const patched = jsonPatch.applyPatch(structuredClone(original), decodePatch(response.patch)).newDocument;
    expect(patched).toEqual(inject({ pod: original, ...CONTEXT, settings: SETTINGS }).pod);
  });

  it('sends no patch and no patchType when nothing changes', async () => {
    const { response, result, reason } = await admit(request(pod({})), OPTIONS);
    expect({ result, reason }).toEqual({ result: 'skipped', reason: 'not-selected' });
    expect(response).toEqual({ uid: 'u-1', allowed: true });
  });

  it('passes inject warnings on to the client', async () => {
    const { response } = await admit(request(pod({ [ANNOTATION_INJECT]: 'true', [ANNOTATION_INTEGRATIONS]: 'nope' })), OPTIONS);
    expect(response.warnings).toEqual([expect.stringContaining('unknown integration "nope"')]);
    expect(response.patch).toBeDefined();
  });

  it.each(['DELETE', 'UPDATE', 'CONNECT'])('allows %s untouched', async (operation) => {
    const outcome = await admit(request(pod({ [ANNOTATION_INJECT]: 'true' }), operation), OPTIONS);
    expect(outcome).toMatchObject({ result: 'ignored', reason: 'operation', response: { uid: 'u-1', allowed: true } });
    expect(outcome.response.patch).toBeUndefined();
  });

  it('allows other kinds untouched', async () => {
    const outcome = await admit({ ...request({}), kind: { group: 'apps', version: 'v1', kind: 'Deployment' } }, OPTIONS);
    expect(outcome).toMatchObject({ result: 'ignored', reason: 'kind', response: { allowed: true } });
  });

  it('admits the pod unchanged with a warning when anything inside fails', async () => {
    const failing: AdmitOptions = {
      ...OPTIONS,
      lookup: () => {
        throw new Error('cache not synced');
      },
    };
    const outcome = await admit(request(pod({ [ANNOTATION_INJECT]: 'true' })), failing);
    expect(outcome).toMatchObject({ result: 'error', reason: 'internal', message: 'cache not synced' });
    expect(outcome.response).toEqual({
      uid: 'u-1',
      allowed: true,
      warnings: ['breakwater: sidecar not injected, pod admitted unchanged: internal error: cache not synced'],
    });
    const noObject = await admit(request(undefined), OPTIONS);
    expect(noObject).toMatchObject({ result: 'error', response: { allowed: true } });
  });
});
