// The MutatingWebhookConfiguration that sends Pod CREATEs to the operator. In a cluster the chart owns
// it and the operator only keeps its caBundle current; run outside a cluster (--webhook-url) the
// operator registers the whole object by URL itself, switching the chart's over from its Service.
import type {
  AdmissionregistrationV1WebhookClientConfig,
  V1LabelSelector,
  V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { FIELD_MANAGER, WEBHOOK_NAME, WEBHOOK_PATH } from '../api/names.ts';
import { PATCH } from './apply.ts';
import type { KubeClient } from './client.ts';
import { isNotFound } from './errors.ts';
import { MUTATING_WEBHOOK_CONFIGURATIONS, objectPath } from './resources.ts';

const pathOf = (name: string) => objectPath(MUTATING_WEBHOOK_CONFIGURATIONS, undefined, name);

export const FAILURE_POLICIES = ['Ignore', 'Fail'] as const;
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

/** Namespaces never sent to the webhook: a broken webhook must not be able to stop the control plane. */
export const ALWAYS_EXCLUDED_NAMESPACES = ['kube-system'] as const;
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export type WebhookTarget =
  | { readonly url: string }
  | { readonly service: { readonly name: string; readonly namespace: string; readonly port: number } };

export interface WebhookRegistration {
  readonly name: string;
  readonly target: WebhookTarget;
  /** PEM bundle the API server trusts for the webhook. */
  readonly caBundle: string;
  readonly failurePolicy: FailurePolicy;
  readonly timeoutSeconds: number;
  /** Besides kube-system; the operator's own namespace belongs here. */
  readonly excludeNamespaces: readonly string[];
  /** Further conditions on the namespace, e.g. a test's own label. */
  readonly namespaceSelector?: V1LabelSelector;
}

function mutatingWebhookConfiguration(r: WebhookRegistration): V1MutatingWebhookConfiguration {
  const clientConfig: AdmissionregistrationV1WebhookClientConfig = {
    caBundle: Buffer.from(r.caBundle).toString('base64'),
    ...('url' in r.target ? { url: r.target.url } : { service: { ...r.target.service, path: WEBHOOK_PATH } }),
  };
  const excluded = [...new Set([...ALWAYS_EXCLUDED_NAMESPACES, ...r.excludeNamespaces])];
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: r.name },
    webhooks: [
      {
        name: WEBHOOK_NAME,
        clientConfig,
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }],
        failurePolicy: r.failurePolicy,
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: r.timeoutSeconds,
        // Another webhook may add containers after us; being called again lets inject() see them
        // (and leave the pod alone, as it is already injected).
        reinvocationPolicy: 'IfNeeded',
        namespaceSelector: {
          ...r.namespaceSelector,
          matchExpressions: [
            ...(r.namespaceSelector?.matchExpressions ?? []),
            { key: NAMESPACE_NAME_LABEL, operator: 'NotIn', values: excluded },
          ],
        },
      },
    ],
  };
}

/** Creates the configuration or brings the fields we own to `r` (server-side apply). */
export async function applyWebhookConfiguration(client: KubeClient, r: WebhookRegistration): Promise<void> {
  const body = mutatingWebhookConfiguration(r);
  await switchTarget(client, r.name, body.webhooks![0]!.clientConfig);
  await client.requestJson('PATCH', pathOf(r.name), { body, contentType: PATCH.apply, query: { fieldManager: FIELD_MANAGER, force: true } });
}

/**
 * A server-side apply merges: applying a URL to the configuration the chart registered by Service
 * would keep the chart's `service` beside our `url`, which the API server refuses ("exactly one of url
 * or service"), again on every retry. Where a webhook is registered the other way, one JSON patch
 * swaps the target first; each swap is guarded by a test of the webhook's name.
 */
async function switchTarget(client: KubeClient, name: string, target: AdmissionregistrationV1WebhookClientConfig): Promise<void> {
  let current: V1MutatingWebhookConfiguration;
  try {
    current = await client.getJson<V1MutatingWebhookConfiguration>(pathOf(name));
  } catch (error) {
    if (isNotFound(error)) return;
    throw error;
  }
  const [wanted, other] = target.url !== undefined ? (['url', 'service'] as const) : (['service', 'url'] as const);
  const patch = (current.webhooks ?? []).flatMap((webhook, i) =>
    webhook.clientConfig[other] === undefined
      ? []
      : [
          { op: 'test', path: `/webhooks/${i}/name`, value: webhook.name },
          { op: 'remove', path: `/webhooks/${i}/clientConfig/${other}` },
          { op: 'add', path: `/webhooks/${i}/clientConfig/${wanted}`, value: target[wanted] },
        ],
  );
  if (patch.length === 0) return;
  await client.requestJson('PATCH', pathOf(name), { body: patch, contentType: PATCH.json });
}

export async function deleteWebhookConfiguration(client: KubeClient, name: string): Promise<void> {
  await client.requestJson('DELETE', pathOf(name));
}

/**
 * Sets `caBundle` on every webhook of the configuration that does not have it yet; returns whether
 * anything changed. Each replace is guarded by a test of the webhook's name, so a configuration edited
 * in between fails the patch instead of receiving the bundle at the wrong index.
 */
export async function patchCaBundle(client: KubeClient, name: string, caBundlePem: string): Promise<boolean> {
  const current = await client.getJson<V1MutatingWebhookConfiguration>(pathOf(name));
  const encoded = Buffer.from(caBundlePem).toString('base64');
  const patch = (current.webhooks ?? []).flatMap((webhook, i) =>
    webhook.clientConfig.caBundle === encoded
      ? []
      : [
          { op: 'test', path: `/webhooks/${i}/name`, value: webhook.name },
          { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: encoded },
        ],
  );
  if (patch.length === 0) return false;
  await client.requestJson('PATCH', pathOf(name), { body: patch, contentType: PATCH.json });
  return true;
}
