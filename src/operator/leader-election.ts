// Leader election on a coordination.k8s.io Lease, client-go's algorithm:
// - a replica takes the Lease when it is free (no holder) or expired: unchanged for a whole
//   leaseDuration, measured on this replica's clock from when it first saw that version, so clocks
//   that disagree do not matter;
// - every write carries the resourceVersion it read, so of two replicas racing only one wins (409);
// - the leader renews every retryPeriod; when it cannot renew for renewDeadline (shorter than the
//   lease duration) it stops leading at once, before anyone else may take over;
// - on shutdown the leader releases the Lease (no holder), so a standby takes it on its next try
//   instead of waiting the lease out.
// A replica that stops leading goes back to campaigning; its controllers stop with the leading signal.
import { sleep } from '../kube/backoff.ts';
import type { KubeClient } from '../kube/client.ts';
import { isConflict } from '../kube/errors.ts';
import { createLease, readLease, updateLease, type LeaseRecord, type LeaseRef, type ObservedLease } from '../kube/lease.ts';
import type { Logger } from '../runtime/logger.ts';

const RELEASE_ATTEMPTS = 3;

export const LEADER_ELECTION_DEFAULTS = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
} as const;

export interface LeaderElectionOptions {
  readonly client: KubeClient;
  readonly lease: LeaseRef;
  /** Unique per process: written as the Lease's holderIdentity. */
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly logger: Logger;
  /** Runs while this replica leads; `leading` aborts the moment it stops. */
  readonly onStartedLeading: (leading: AbortSignal) => void;
  readonly onStoppedLeading: () => void;
}

export class LeaderElector {
  private readonly options: LeaderElectionOptions;
  /** The last Lease seen and when (our clock) it was first seen in that version. */
  private observed: { lease: ObservedLease; at: number } | undefined;
  private leading: AbortController | undefined;
  private lastFailure: string | undefined;

  constructor(options: LeaderElectionOptions) {
    if (options.renewDeadlineMs >= options.leaseDurationMs) throw new RangeError('renew deadline must be shorter than the lease duration');
    if (options.retryPeriodMs >= options.renewDeadlineMs) throw new RangeError('retry period must be shorter than the renew deadline');
    this.options = options;
  }

  isLeader(): boolean {
    return this.leading !== undefined;
  }

  /**
   * Campaigns, leads, and campaigns again after losing the Lease, until `stop` aborts; then releases
   * the Lease if this replica holds it.
   */
  async run(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      await this.acquire(stop);
      if (stop.aborted) break;
      this.startLeading();
      await this.renewUntilLost(stop);
      if (stop.aborted) await this.release();
      else this.stopLeading();
    }
  }

  /** Stops leading first, then gives the Lease up so a standby need not wait for it to expire. */
  private async release(): Promise<void> {
    const wasLeader = this.leading !== undefined;
    this.stopLeading();
    if (!wasLeader) return;
    const { client, lease, identity, logger } = this.options;
    const signal = AbortSignal.timeout(this.options.renewDeadlineMs);
    let current = this.observed?.lease;
    // Our last renewal may have landed without us seeing its answer, so a conflict is answered by
    // reading the Lease again: if we still hold it, release that version.
    for (let attempt = 1; attempt <= RELEASE_ATTEMPTS; attempt++) {
      try {
        if (attempt > 1) current = await readLease(client, lease, signal);
        if (!current || current.record.holderIdentity !== identity) return;
        const now = new Date();
        const released: LeaseRecord = {
          holderIdentity: '',
          leaseDurationSeconds: 1,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: current.record.leaseTransitions,
        };
        await updateLease(client, lease, released, current.resourceVersion, signal);
        logger.info({ lease: lease.name }, 'released leader lease');
        return;
      } catch (error) {
        if (isConflict(error) && attempt < RELEASE_ATTEMPTS) continue;
        logger.warn({ err: error }, 'could not release leader lease; it expires on its own');
        return;
      }
    }
  }


  private async acquire(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      if (await this.tryAcquireOrRenew(AbortSignal.any([stop, AbortSignal.timeout(this.options.renewDeadlineMs)]))) return;
      await sleep(jittered(this.options.retryPeriodMs), stop);
    }
  }

  private async renewUntilLost(stop: AbortSignal): Promise<void> {
    let lastRenew = Date.now();
    while (!stop.aborted) {
      await sleep(this.options.retryPeriodMs, stop);
      if (stop.aborted) return;
      const left = lastRenew + this.options.renewDeadlineMs - Date.now();
      // Not cut short by `stop`: a renewal abandoned mid-flight may still land, and the release that
      // follows needs to know the Lease's version.
      if (left > 0 && (await this.tryAcquireOrRenew(AbortSignal.timeout(left)))) {
        lastRenew = Date.now();
        continue;
      }
      if (stop.aborted) return;
      if (Date.now() - lastRenew >= this.options.renewDeadlineMs || !this.holdsObserved()) {
        this.options.logger.warn({ lease: this.options.lease.name, identity: this.options.identity }, 'lost leader lease');
        return;
      }
    }
  }

  private holdsObserved(): boolean {
    return this.observed?.lease.record.holderIdentity === this.options.identity;
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client, lease, identity, leaseDurationMs, logger } = this.options;
    const now = new Date();
    const desired = (old?: LeaseRecord): LeaseRecord => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      acquireTime: old?.holderIdentity === identity && old.acquireTime ? old.acquireTime : now,
      renewTime: now,
      leaseTransitions: old === undefined ? 0 : old.holderIdentity === identity ? old.leaseTransitions : old.leaseTransitions + 1,
    });
    try {
      const current = await readLease(client, lease, signal);
      if (!current) {
        this.see(await createLease(client, lease, desired(), signal));
        return true;
      }
      this.see(current);
      const record = current.record;
      const heldByOther = record.holderIdentity !== '' && record.holderIdentity !== identity;
      const observedAt = this.observed?.at ?? now.getTime();
      if (heldByOther && observedAt + record.leaseDurationSeconds * 1000 > now.getTime()) return false;
      this.see(await updateLease(client, lease, desired(record), current.resourceVersion, signal));
      return true;
    } catch (error) {
      // A 409 is another replica winning a race. Anything else (a missing namespace, RBAC, an API
      // server that is down) is worth a warning, once per kind of failure rather than every retry.
      if (!isConflict(error)) {
        const failure = String((error as Error).message);
        if (failure !== this.lastFailure) logger.warn({ err: error, lease: lease.name }, 'cannot take or renew the leader lease');
        this.lastFailure = failure;
      }
      return false;
    }
  }

  /** Remembers the Lease; the observation time resets only when the Lease changed. */
  private see(lease: ObservedLease): void {
    this.lastFailure = undefined;
    if (this.observed?.lease.resourceVersion === lease.resourceVersion) return;
    this.observed = { lease, at: Date.now() };
  }

  private startLeading(): void {
    this.leading = new AbortController();
    this.options.logger.info({ lease: this.options.lease.name, identity: this.options.identity }, 'became leader');
    this.options.onStartedLeading(this.leading.signal);
  }

  private stopLeading(): void {
    if (!this.leading) return;
    this.leading.abort();
    this.leading = undefined;
    this.options.onStoppedLeading();
  }
}

/** client-go's JitterFactor 1.2: up to 20% longer, so standbys do not poll in step. */
function jittered(ms: number): number {
  return ms * (1 + 0.2 * Math.random());
}
