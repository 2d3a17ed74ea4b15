// authentication.k8s.io/v1 TokenReview: asks the API server whether a bearer token is valid for an
// audience, and whom it names. A projected ServiceAccount token is bound to its pod, and the review
// says which one in the user's extra fields, so a caller can be held to its own pod.
import type { KubeClient } from './client.ts';

const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';
const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';

interface TokenReviewResponse {
  readonly status?: {
    readonly authenticated?: boolean;
    readonly error?: string;
    readonly audiences?: readonly string[];
    readonly user?: { readonly username?: string; readonly extra?: Record<string, readonly string[]> };
  };
}

/** Who a pod-bound token belongs to. */
export interface PodIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly pod: string;
  readonly podUid: string;
}

export type TokenReviewResult =
  | { readonly ok: true; readonly identity: PodIdentity }
  | { readonly ok: false; readonly reason: 'unauthenticated' | 'not_a_pod'; readonly message: string };

export async function reviewPodToken(client: KubeClient, token: string, audience: string, signal?: AbortSignal): Promise<TokenReviewResult> {
  const review = await client.requestJson<TokenReviewResponse>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [audience] } },
    signal,
  });
  const status = review.status ?? {};
  if (status.authenticated !== true) {
    return { ok: false, reason: 'unauthenticated', message: `token refused: ${status.error || 'not authenticated'}` };
  }
  if (!(status.audiences ?? []).includes(audience)) {
    return { ok: false, reason: 'unauthenticated', message: `token is not for audience ${audience}` };
  }
  const username = status.user?.username ?? '';
  const [namespace, serviceAccount] = username.startsWith(SERVICE_ACCOUNT_PREFIX) ? username.slice(SERVICE_ACCOUNT_PREFIX.length).split(':') : [];
  const pod = status.user?.extra?.[POD_NAME_EXTRA]?.[0];
  const podUid = status.user?.extra?.[POD_UID_EXTRA]?.[0];
  if (!namespace || !serviceAccount || !pod || !podUid) {
    return { ok: false, reason: 'not_a_pod', message: `token of ${username || 'an unknown user'} is not bound to a pod` };
  }
  return { ok: true, identity: { namespace, serviceAccount, pod, podUid } };
}
