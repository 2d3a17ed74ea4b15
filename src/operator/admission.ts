// AdmissionReview v1 in and out, after controller-runtime's defaulter and Pepr's mutate processor:
// decode (bad input is the caller's 400), let inject() mutate a copy, diff the copy into a JSON Patch.
// Everything after decoding admits the pod: an internal error admits it unchanged with a warning,
// because a webhook bug must never block a deploy.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import jsonPatch from 'fast-json-patch';
import { inject, type InjectSettings, type NamespaceIntegration, type SkipReason } from './inject.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: { readonly group: string; readonly version: string; readonly kind: string };
  readonly namespace?: string;
  readonly name?: string;
  readonly operation: string;
  readonly object?: unknown;
  readonly dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of a JSON Patch (RFC 6902). */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export class AdmissionDecodeError extends Error {
  override readonly name = 'AdmissionDecodeError';
  readonly code = 'bad_admission_review';
}

/** What the webhook needs to know about the pod's namespace, from the operator's cache. */
export interface AdmissionContext {
  readonly namespace: V1Namespace | undefined;
  readonly integrations: readonly NamespaceIntegration[];
}

export type ContextLookup = (namespace: string) => AdmissionContext | Promise<AdmissionContext>;

export type AdmissionResult = 'injected' | 'skipped' | 'ignored' | 'error';

export interface AdmissionOutcome {
  readonly response: AdmissionResponse;
  readonly result: AdmissionResult;
  /** Bounded: an inject reason, `operation`, `kind` or `internal`. */
  readonly reason: SkipReason | 'injected' | 'operation' | 'kind' | 'internal';
  readonly message: string;
}

/** Parses an AdmissionReview body; anything that is not one is an AdmissionDecodeError. */
export function decodeReview(body: string): AdmissionRequest {
  let review: unknown;
  try {
    review = JSON.parse(body);
  } catch (error) {
    throw new AdmissionDecodeError(`body is not JSON: ${(error as Error).message}`);
  }
  if (typeof review !== 'object' || review === null) throw new AdmissionDecodeError('body is not a JSON object');
  const { apiVersion, kind, request } = review as { apiVersion?: unknown; kind?: unknown; request?: unknown };
  if (apiVersion !== ADMISSION_API_VERSION || kind !== 'AdmissionReview') {
    throw new AdmissionDecodeError(`expected apiVersion ${ADMISSION_API_VERSION} kind AdmissionReview, got ${String(apiVersion)} ${String(kind)}`);
  }
  if (typeof request !== 'object' || request === null) throw new AdmissionDecodeError('request is missing');
  const r = request as Partial<Record<keyof AdmissionRequest, unknown>>;
  if (typeof r.uid !== 'string' || r.uid === '') throw new AdmissionDecodeError('request.uid is missing');
  if (typeof r.operation !== 'string') throw new AdmissionDecodeError('request.operation is missing');
  const k = r.kind as { kind?: unknown } | undefined;
  if (typeof k?.kind !== 'string') throw new AdmissionDecodeError('request.kind is missing');
  return request as AdmissionRequest;
}

export function encodeReview(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

export interface AdmitOptions {
  readonly lookup: ContextLookup;
  readonly settings: InjectSettings;
}

export async function admit(request: AdmissionRequest, options: AdmitOptions): Promise<AdmissionOutcome> {
  const uid = request.uid;
  if (request.operation !== 'CREATE') {
    return { response: { uid, allowed: true }, result: 'ignored', reason: 'operation', message: `operation ${request.operation}` };
  }
  if (request.kind.kind !== 'Pod' || request.kind.group !== '') {
    return { response: { uid, allowed: true }, result: 'ignored', reason: 'kind', message: `kind ${request.kind.kind}` };
  }
  try {
    const pod = podOf(request);
    const namespace = request.namespace ?? pod.metadata?.namespace ?? '';
    const context = await options.lookup(namespace);
    const result = inject({ pod, namespace: context.namespace, integrations: context.integrations, settings: options.settings });
    const response: AdmissionResponse = { uid, allowed: true };
    // A pod inject() skipped is equal to the input, so diffing it would only cost time on every admission.
    const patch = result.injected ? jsonPatch.compare(pod, result.pod) : [];
    if (patch.length > 0) {
      response.patchType = 'JSONPatch';
      response.patch = Buffer.from(JSON.stringify(patch)).toString('base64');
    }
    if (result.warnings.length > 0) response.warnings = [...result.warnings];
    return { response, result: result.injected ? 'injected' : 'skipped', reason: result.reason, message: result.message };
  } catch (error) {
    const message = (error as Error).message;
    return {
      response: { uid, allowed: true, warnings: [`breakwater: sidecar not injected, pod admitted unchanged: internal error: ${message}`] },
      result: 'error',
      reason: 'internal',
      message,
    };
  }
}

function podOf(request: AdmissionRequest): V1Pod {
  const pod = request.object;
  if (typeof pod !== 'object' || pod === null) throw new AdmissionDecodeError('request.object is not a Pod');
  return pod as V1Pod;
}
