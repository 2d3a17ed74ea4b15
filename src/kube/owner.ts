// What the operator creates in its own namespace (its webhook certificate Secret, its Lease) carries
// our labels and is owned by the chart's webhook Service: `helm uninstall` deletes the Service, and the
// garbage collector then deletes them too. An operator run outside the chart (--webhook-url) finds no
// such Service and creates them without an owner.
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { managedLabels } from '../api/names.ts';
import type { KubeClient } from './client.ts';
import { isNotFound } from './errors.ts';
import { objectPath, SERVICES } from './resources.ts';

/** The metadata the operator adds to an object it creates. */
export type OwnedMetadata = Required<Pick<V1ObjectMeta, 'labels'>> & Pick<V1ObjectMeta, 'ownerReferences'>;

export type MetadataFor = () => Promise<OwnedMetadata>;

/**
 * Labels for `component`, and the Service `namespace/service` as owner once it exists. The Service is
 * read until it is found, then remembered: the writes that use this (a Lease renewal every few
 * seconds) must not each cost a read.
 */
export function ownedByService(client: KubeClient, namespace: string, service: string, component: string): MetadataFor {
  let owner: V1OwnerReference | undefined;
  return async () => {
    if (owner === undefined) {
      try {
        const found = await client.getJson<{ metadata: { uid: string } }>(objectPath(SERVICES, namespace, service));
        owner = { apiVersion: 'v1', kind: 'Service', name: service, uid: found.metadata.uid };
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
    return { labels: managedLabels(component), ...(owner && { ownerReferences: [owner] }) };
  };
}
