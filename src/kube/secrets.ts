// Reading and writing whole Secrets: only the operator's own certificate Secret, in its own namespace.
// Writes carry the resourceVersion they read, so two replicas rotating at once cannot both win.
import type { V1Secret } from '@kubernetes/client-node';
import type { KubeClient } from './client.ts';
import { isNotFound } from './errors.ts';
import type { OwnedMetadata } from './owner.ts';
import { collectionPath, objectPath, type ResourceType, type Stored } from './resources.ts';

/** Full Secrets, data included; watch one by name with a `metadata.name=` field selector. */
export const SECRETS: ResourceType = { group: '', version: 'v1', plural: 'secrets', namespaced: true };

export type StoredSecret = Stored<V1Secret>;

/** The Secret's data decoded as UTF-8, or undefined when there is no such Secret. */
export async function readSecret(client: KubeClient, namespace: string, name: string): Promise<{ data: Record<string, string>; resourceVersion: string } | undefined> {
  try {
    const secret = await client.getJson<V1Secret>(objectPath(SECRETS, namespace, name));
    return { data: decodeSecretData(secret), resourceVersion: secret.metadata?.resourceVersion ?? '' };
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

function decodeSecretData(secret: V1Secret): Record<string, string> {
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

export interface SecretWrite {
  readonly namespace: string;
  readonly name: string;
  readonly type: string;
  readonly data: Record<string, string>;
  /** The version read before; undefined creates the Secret. A conflict (409) means someone else wrote first. */
  readonly resourceVersion: string | undefined;
  /** Labels and owner; a replace keeps only what it sends. */
  readonly metadata?: OwnedMetadata;
}

export async function writeSecret(client: KubeClient, write: SecretWrite): Promise<void> {
  const body: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      ...write.metadata,
      name: write.name,
      namespace: write.namespace,
      ...(write.resourceVersion !== undefined && { resourceVersion: write.resourceVersion }),
    },
    type: write.type,
    data: Object.fromEntries(Object.entries(write.data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
  if (write.resourceVersion === undefined) await client.requestJson('POST', collectionPath(SECRETS, write.namespace), { body });
  else await client.requestJson('PUT', objectPath(SECRETS, write.namespace, write.name), { body });
}
