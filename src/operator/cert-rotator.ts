// Keeps the webhook's certificates in a Secret in the operator's namespace, in every replica and
// without leader election: each replica watches the Secret, serves what it holds, and rotates it when
// due. Two replicas rotating at once cannot both win: the write carries the resourceVersion it read,
// and the loser re-reads and serves the winner's certificate.
import { X509Certificate } from 'node:crypto';
import type { Logger } from '../runtime/logger.ts';
import { backoffDelay } from '../kube/backoff.ts';
import type { KubeClient } from '../kube/client.ts';
import type { MetadataFor } from '../kube/owner.ts';
import { isConflict } from '../kube/errors.ts';
import { Informer } from '../kube/informer.ts';
import { readSecret, SECRETS, writeSecret, type StoredSecret } from '../kube/secrets.ts';
import { planCertificates, renewalAt, splitPemBundle, type CertificateRequirements, type WebhookCertificates } from './certs.ts';
import type { ServingCertificate } from './webhook.ts';

/** Secret keys, as cert-manager lays out a certificate (plus the CA key, which cert-manager keeps apart). */
export const SECRET_KEYS = { caBundle: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;
const SECRET_TYPE = 'kubernetes.io/tls';
const MAX_CONFLICTS = 5;
// Checks at least this often even when nothing is due (timers cannot span years, and clocks jump).
const MAX_CHECK_INTERVAL_MS = 60 * 60 * 1000;
const RETRY_BACKOFF = { initialMs: 1_000, maxMs: 60_000, jitter: true } as const;
/**
 * The CA bundle is put in place again this often, changed or not: a webhook configuration deleted and
 * recreated (a reinstall, `helm upgrade` after a switch from URL mode) comes back without it, and the
 * API server then cannot call the webhook.
 */
const REPUBLISH_MS = 5 * 60 * 1000;
/** While there is nowhere to put the bundle (the configuration is not there yet), look again this soon. */
const UNPUBLISHED_RETRY_MS = 10_000;

export interface CertRotatorOptions extends Omit<CertificateRequirements, 'now'> {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly secretName: string;
  /** Labels and owner of the Secret. */
  readonly metadata?: MetadataFor;
  /**
   * Puts the CA bundle where the API server reads it (the webhook configuration's caBundle): whether
   * that changed it, or `missing` when there is nowhere to put it yet.
   */
  readonly publishCaBundle: (caBundle: string) => Promise<'changed' | 'unchanged' | 'missing'>;
  /** Called with every serving certificate this replica should serve, the first one included. */
  readonly onCertificate: (certificate: ServingCertificate) => void;
  readonly logger: Logger;
  readonly now?: () => Date;
  /** REPUBLISH_MS unless given (tests). */
  readonly republishMs?: number;
}

function certificatesFromSecret(data: Record<string, string>): WebhookCertificates | undefined {
  const [caBundle, caKey, cert, key] = [data[SECRET_KEYS.caBundle], data[SECRET_KEYS.caKey], data[SECRET_KEYS.cert], data[SECRET_KEYS.key]];
  if (!caBundle || !caKey || !cert || !key) return undefined;
  return { caBundle, caKey, cert, key };
}

export class CertRotator {
  private readonly options: CertRotatorOptions;
  private readonly now: () => Date;
  private readonly informer: Informer<StoredSecret>;
  private timer: NodeJS.Timeout | undefined;
  /** Puts the bundle back now and then (REPUBLISH_MS), apart from the certificate checks. */
  private republishTimer: NodeJS.Timeout | undefined;
  /** The bundle of the certificates adopted last: what a republish puts back. */
  private caBundle = '';
  private running: Promise<void> = Promise.resolve();
  private pending = false;
  private failures = 0;
  private stopped = false;
  private served: ServingCertificate | undefined;

  constructor(options: CertRotatorOptions) {
    this.options = options;
    this.now = options.now ?? (() => new Date());
    this.informer = new Informer<StoredSecret>(options.client, SECRETS, {
      namespace: options.namespace,
      fieldSelector: `metadata.name=${options.secretName}`,
    });
    const trigger = () => this.trigger();
    this.informer.addHandlers({ add: trigger, update: trigger, delete: trigger });
  }

  /** Makes sure a usable certificate exists, serves it, and keeps watching; resolves with the first one. */
  async start(): Promise<ServingCertificate> {
    for (;;) {
      if (this.stopped) throw new Error('stopped before the webhook certificates were ready');
      try {
        await this.sync();
        break;
      } catch (error) {
        const delay = backoffDelay(++this.failures, RETRY_BACKOFF);
        this.options.logger.warn({ err: (error as Error).message, retryInMs: delay }, 'webhook certificates not ready');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    this.informer.start();
    if (!this.served) throw new Error('no serving certificate after a successful sync');
    return this.served;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.republishTimer);
    await this.informer.stop();
    await this.running;
  }

  /** Runs sync() once more after the current one; calls while one is queued collapse into it. */
  private trigger(): void {
    if (this.stopped || this.pending) return;
    this.pending = true;
    this.running = this.running.then(async () => {
      this.pending = false;
      if (this.stopped) return;
      try {
        await this.sync();
      } catch (error) {
        const delay = backoffDelay(++this.failures, RETRY_BACKOFF);
        this.options.logger.warn({ err: (error as Error).message, retryInMs: delay }, 'webhook certificate check failed');
        this.schedule(delay);
      }
    });
  }

  private async sync(): Promise<void> {
    const { client, namespace, secretName, logger } = this.options;
    for (let attempt = 1; ; attempt++) {
      const stored = await readSecret(client, namespace, secretName);
      const current = stored && certificatesFromSecret(stored.data);
      const plan = await planCertificates(current, { ...this.options, now: this.now() });
      // `keep` is only ever the answer for stored certificates.
      if (plan.action === 'keep') return this.adopt(current as WebhookCertificates);
      const { certificates } = plan;
      try {
        await writeSecret(client, {
          namespace,
          name: secretName,
          type: SECRET_TYPE,
          resourceVersion: stored?.resourceVersion,
          metadata: await this.options.metadata?.(),
          data: {
            [SECRET_KEYS.caBundle]: certificates.caBundle,
            [SECRET_KEYS.caKey]: certificates.caKey,
            [SECRET_KEYS.cert]: certificates.cert,
            [SECRET_KEYS.key]: certificates.key,
          },
        });
      } catch (error) {
        // Another replica wrote first (or created the Secret first): serve what it wrote.
        if (isConflict(error) && attempt < MAX_CONFLICTS) continue;
        throw error;
      }
      logger.info({ secret: `${namespace}/${secretName}`, why: plan.why }, 'webhook certificates written');
      return this.adopt(certificates);
    }
  }

  private async adopt(certificates: WebhookCertificates): Promise<void> {
    // The API server must trust the CA before any replica serves a certificate signed by it.
    this.caBundle = certificates.caBundle;
    await this.publish();
    if (this.served?.cert !== certificates.cert || this.served.key !== certificates.key) {
      this.served = { cert: certificates.cert, key: certificates.key };
      this.options.onCertificate(this.served);
      this.options.logger.info({ serial: new X509Certificate(certificates.cert).serialNumber }, 'serving webhook certificate');
    }
    this.failures = 0;
    const [caPem] = splitPemBundle(certificates.caBundle) as [string];
    const due = Math.min(
      renewalAt(new X509Certificate(certificates.cert), this.options.validityMs),
      renewalAt(new X509Certificate(caPem), this.options.caValidityMs),
    );
    this.schedule(due - this.now().getTime());
  }

  /** Puts the bundle in place (logged when that changed it), and again later: see REPUBLISH_MS. */
  private async publish(): Promise<void> {
    const caBundle = this.caBundle;
    let result: Awaited<ReturnType<CertRotatorOptions['publishCaBundle']>> = 'missing';
    try {
      result = await this.options.publishCaBundle(caBundle);
      if (result === 'changed') this.options.logger.info({ cas: splitPemBundle(caBundle).length }, 'webhook caBundle published');
    } finally {
      clearTimeout(this.republishTimer);
      if (!this.stopped) {
        const again = result === 'missing' ? UNPUBLISHED_RETRY_MS : (this.options.republishMs ?? REPUBLISH_MS);
        // In turn with the certificate checks, and with the bundle adopted last: one run beside a
        // check that adopts a new CA could put the old bundle back after it.
        this.republishTimer = setTimeout(() => {
          this.running = this.running.then(async () => {
            if (this.stopped) return;
            await this.publish().catch((error: Error) => this.options.logger.warn({ err: error.message }, 'webhook caBundle not published; trying again'));
          });
        }, again);
        this.republishTimer.unref();
      }
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.trigger(), Math.min(MAX_CHECK_INTERVAL_MS, Math.max(0, delayMs)));
    this.timer.unref();
  }
}
