// coordination.k8s.io Leases, as the leader elector reads and writes them. Times are MicroTime: a plain
// Date serialises with milliseconds ("…00.123Z"), which the API server refuses for these fields.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { KubeClient } from './client.ts';
import { isNotFound } from './errors.ts';
import { microTime } from './micro-time.ts';
import type { MetadataFor } from './owner.ts';
import { collectionPath, LEASES, objectPath } from './resources.ts';

/** A Lease as it is on the wire: times are strings. */
interface Lease {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: V1ObjectMeta;
  readonly spec?: {
    readonly holderIdentity?: string;
    readonly leaseDurationSeconds?: number;
    readonly acquireTime?: string;
    readonly renewTime?: string;
    readonly leaseTransitions?: number;
  };
}

export interface LeaseRecord {
  /** '' when nobody holds it (released). */
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime?: Date;
  readonly renewTime?: Date;
  readonly leaseTransitions: number;
}

export interface ObservedLease {
  readonly record: LeaseRecord;
  readonly resourceVersion: string;
}

export interface LeaseRef {
  readonly namespace: string;
  readonly name: string;
  /** Labels and owner written with every create and replace (a replace keeps only what it sends). */
  readonly metadata?: MetadataFor;
}

export async function readLease(client: KubeClient, ref: LeaseRef, signal?: AbortSignal): Promise<ObservedLease | undefined> {
  try {
    return observed(await client.getJson<Lease>(objectPath(LEASES, ref.namespace, ref.name), { signal }));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Creates the Lease; a 409 means another replica created it first. */
export async function createLease(client: KubeClient, ref: LeaseRef, record: LeaseRecord, signal?: AbortSignal): Promise<ObservedLease> {
  const body: Lease = { metadata: { ...(await ref.metadata?.()), name: ref.name, namespace: ref.namespace }, spec: spec(record) };
  return observed(await client.requestJson<Lease>('POST', collectionPath(LEASES, ref.namespace), { body, signal }));
}

/** Replaces the Lease if it is still at `resourceVersion`; a 409 means someone wrote it in between. */
export async function updateLease(
  client: KubeClient,
  ref: LeaseRef,
  record: LeaseRecord,
  resourceVersion: string,
  signal?: AbortSignal,
): Promise<ObservedLease> {
  const body: Lease = { metadata: { ...(await ref.metadata?.()), name: ref.name, namespace: ref.namespace, resourceVersion }, spec: spec(record) };
  return observed(await client.requestJson<Lease>('PUT', objectPath(LEASES, ref.namespace, ref.name), { body, signal }));
}

function spec(record: LeaseRecord): Lease['spec'] {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    leaseTransitions: record.leaseTransitions,
    ...(record.acquireTime && { acquireTime: microTime(record.acquireTime) }),
    ...(record.renewTime && { renewTime: microTime(record.renewTime) }),
  };
}

function observed(lease: Lease): ObservedLease {
  const s = lease.spec ?? {};
  return {
    resourceVersion: lease.metadata?.resourceVersion ?? '',
    record: {
      holderIdentity: s.holderIdentity ?? '',
      leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
      leaseTransitions: s.leaseTransitions ?? 0,
      ...(s.acquireTime && { acquireTime: new Date(s.acquireTime) }),
      ...(s.renewTime && { renewTime: new Date(s.renewTime) }),
    },
  };
}
