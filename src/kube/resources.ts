// The kinds the operator lists and watches, as paths on the API server, and the shapes it reads.
import type { KubernetesObject, V1ConfigMap, V1Namespace, V1ObjectMeta } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../api/names.ts';
import type { ExternalIntegration } from '../api/schema.ts';

export interface ResourceType {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /**
   * Ask for PartialObjectMetadata: name, labels, annotations and versions, never the contents. How the
   * operator learns which Secrets exist without reading a single value.
   */
  readonly metadataOnly?: boolean;
}

export const EXTERNAL_INTEGRATIONS: ResourceType = { group: GROUP, version: VERSION, plural: PLURAL, namespaced: true };
export const CONFIG_MAPS: ResourceType = { group: '', version: 'v1', plural: 'configmaps', namespaced: true };
export const SECRET_METADATA: ResourceType = { group: '', version: 'v1', plural: 'secrets', namespaced: true, metadataOnly: true };
export const NAMESPACES: ResourceType = { group: '', version: 'v1', plural: 'namespaces', namespaced: false };
export const SERVICES: ResourceType = { group: '', version: 'v1', plural: 'services', namespaced: true };
export const LEASES: ResourceType = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespaced: true };
export const EVENTS: ResourceType = { group: 'events.k8s.io', version: 'v1', plural: 'events', namespaced: true };
export const MUTATING_WEBHOOK_CONFIGURATIONS: ResourceType = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  plural: 'mutatingwebhookconfigurations',
  namespaced: false,
};

export const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
export const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

/** `/apis/breakwater.dev/v1alpha1/namespaces/shop/externalintegrations`, or cluster-wide without ns. */
export function collectionPath(resource: ResourceType, namespace?: string): string {
  const base = resource.group === '' ? `/api/${resource.version}` : `/apis/${resource.group}/${resource.version}`;
  return resource.namespaced && namespace
    ? `${base}/namespaces/${encodeURIComponent(namespace)}/${resource.plural}`
    : `${base}/${resource.plural}`;
}

/** `/api/v1/namespaces/shop/configmaps/breakwater-config`; `namespace` is ignored for a cluster-wide kind. */
export function objectPath(resource: ResourceType, namespace: string | undefined, name: string): string {
  return `${collectionPath(resource, namespace)}/${encodeURIComponent(name)}`;
}

/** Every object from the API server has a name; the generated types leave it optional. */
export type Stored<T extends KubernetesObject> = T & { metadata: V1ObjectMeta & { name: string } };

/** An ExternalIntegration as the API server returns it: the schema's type plus server metadata. */
export type StoredIntegration = Omit<ExternalIntegration, 'metadata'> & { metadata: V1ObjectMeta & { name: string } };
export type StoredConfigMap = Stored<V1ConfigMap>;
export type StoredNamespace = Stored<V1Namespace>;
/** A Secret as the metadata-only informer sees it: no `data`, ever. */
export type SecretMetadata = Stored<KubernetesObject>;
