// coordination.k8s.io Leases, as the leader elector reads and writes them. Times are MicroTime: a plain
// Date serialises with milliseconds ("…00.123Z"), which the API server refuses for these fields.
import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { KubeClient } from './client.ts';
import { withSignal } from './apply.ts';
import { isNotFound } from './errors.ts';
import type { MetadataFor } from './owner.ts';

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
    return observed(await client.coordination.readNamespacedLease(ref, withSignal(signal)));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Creates the Lease; a 409 means another replica created it first. */
export async function createLease(client: KubeClient, ref: LeaseRef, record: LeaseRecord, signal?: AbortSignal): Promise<ObservedLease> {
  const body: V1Lease = { metadata: { ...(await ref.metadata?.()), name: ref.name, namespace: ref.namespace }, spec: spec(record) };
  return observed(await client.coordination.createNamespacedLease({ namespace: ref.namespace, body }, withSignal(signal)));
}

/** Replaces the Lease if it is still at `resourceVersion`; a 409 means someone wrote it in between. */
export async function updateLease(
  client: KubeClient,
  ref: LeaseRef,
  record: LeaseRecord,
  resourceVersion: string,
  signal?: AbortSignal,
): Promise<ObservedLease> {
  const body: V1Lease = { metadata: { ...(await ref.metadata?.()), name: ref.name, namespace: ref.namespace, resourceVersion }, spec: spec(record) };
  return observed(await client.coordination.replaceNamespacedLease({ namespace: ref.namespace, name: ref.name, body }, withSignal(signal)));
}

function spec(record: LeaseRecord): V1Lease['spec'] {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    leaseTransitions: record.leaseTransitions,
    ...(record.acquireTime && { acquireTime: new V1MicroTime(record.acquireTime.getTime()) }),
    ...(record.renewTime && { renewTime: new V1MicroTime(record.renewTime.getTime()) }),
  };
}

function observed(lease: V1Lease): ObservedLease {
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
