// Reads an ExternalIntegration fresh from the API server and merge-patches its /status subresource at
// the resourceVersion it read: a write based on a stale read gets 409 instead of undoing another
// writer's change (the Ready condition shares the conditions list, which a merge patch replaces whole).
import { FIELD_MANAGER, GROUP, PLURAL, VERSION } from '../api/names.ts';
import type { KubeClient } from './client.ts';
import type { StoredIntegration } from './resources.ts';

function path(namespace: string, name: string): string {
  return `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}/${encodeURIComponent(name)}`;
}

export function readIntegration(client: KubeClient, namespace: string, name: string, signal?: AbortSignal): Promise<StoredIntegration> {
  return client.getJson<StoredIntegration>(path(namespace, name), { signal });
}

export async function patchIntegrationStatusAt(
  client: KubeClient,
  target: { readonly namespace: string; readonly name: string; readonly resourceVersion: string },
  status: object,
  signal?: AbortSignal,
): Promise<void> {
  await client.requestJson('PATCH', `${path(target.namespace, target.name)}/status`, {
    contentType: 'application/merge-patch+json',
    query: { fieldManager: FIELD_MANAGER },
    body: { metadata: { resourceVersion: target.resourceVersion }, status },
    signal,
  });
}
