// The admission webhook as a replica-wide runnable of the Manager: its certificates (made and rotated
// here, or mounted by cert-manager), its registration with the API server, and the HTTPS server that
// answers it from the Manager's shared namespace and integration caches.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import {
  COMPONENT_WEBHOOK_CERTIFICATE,
  EVENT_REPORTING_CONTROLLER,
  REPORT_PATH,
  WEBHOOK_CERT_SECRET_NAME,
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_PATH,
  WEBHOOK_SERVICE_NAME,
} from '../api/names.ts';
import { isNotFound } from '../kube/errors.ts';
import { EventRecorder } from '../kube/events.ts';
import { ownedByService } from '../kube/owner.ts';
import type { InformerOptions } from '../kube/informer.ts';
import { EXTERNAL_INTEGRATIONS, NAMESPACES, type StoredIntegration, type StoredNamespace } from '../kube/resources.ts';
import { serverVersion } from '../kube/server-version.ts';
import { applyWebhookConfiguration, patchCaBundle } from '../kube/webhook-configuration.ts';
import type { Logger } from '../runtime/logger.ts';
import { cacheLookup } from './admission-context.ts';
import { AdmissionEvents } from './admission-events.ts';
import { watchCertificateFiles } from './cert-files.ts';
import { CertRotator } from './cert-rotator.ts';
import { DEFAULT_CA_VALIDITY_MS, serviceDnsNames } from './certs.ts';
import type { InjectSettings } from './inject.ts';
import type { RequestHandler } from './fleet-reports.ts';
import type { Manager, Runnable } from './manager.ts';
import { startWebhookServer, type ServingCertificate, type WebhookServer } from './webhook.ts';

/** Registered by URL (outside a cluster) the webhook must still never block a deploy. */
const URL_MODE_FAILURE_POLICY = 'Ignore';
const URL_MODE_TIMEOUT_SECONDS = 5;
/** cert-manager writes the issuing CA beside the serving pair. */
const CA_FILE = 'ca.crt';

export interface AdmissionWebhookOptions {
  /** The operator's own namespace: the certificate Secret lives there, and its pods are never injected. */
  readonly namespace: string;
  readonly port: number;
  /** Register by this URL instead of by Service (tests, development); its host is also where we listen. */
  readonly url?: string;
  /** cert-manager mode: serve tls.crt/tls.key from this folder and leave the caBundle to cert-manager. */
  readonly certDir?: string;
  readonly certValidityMs: number;
  readonly sidecar: Omit<InjectSettings, 'serverVersion'>;
  readonly informer?: InformerOptions;
  /** This replica's name in the Events it records. */
  readonly identity: string;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Serves the fleet report endpoint beside the webhook and tells injected sidecars where it is. */
  readonly fleetReports?: RequestHandler;
}

export function admissionWebhook(manager: Manager, options: AdmissionWebhookOptions): Runnable {
  // The same informers (and options) as the controller's, so the process keeps one cache.
  const namespaces = manager.informer<StoredNamespace>(NAMESPACES, options.informer);
  const integrations = manager.informer<StoredIntegration>(EXTERNAL_INTEGRATIONS, options.informer);
  const logger = options.logger.child({ runnable: 'admission-webhook' });
  const url = options.url ? webhookUrl(options.url) : undefined;

  return {
    name: 'admission-webhook',
    async start() {
      const version = await serverVersion(manager.client);
      let server: WebhookServer | undefined = undefined;
      const serve = (certificate: ServingCertificate) => server?.setCertificate(certificate);
      let certificate: ServingCertificate;
      let stopCertificates: () => Promise<void> | void;
      // The CA injected sidecars trust when they report: the one we publish, or cert-manager's ca.crt.
      let caBundle: string | undefined;
      if (options.certDir) {
        caBundle = await readFile(join(options.certDir, CA_FILE), 'utf8').catch(() => undefined);
        const watch = await watchCertificateFiles(options.certDir, serve, logger);
        certificate = watch.certificate;
        stopCertificates = () => watch.stop();
      } else {
        const rotator = new CertRotator({
          client: manager.client,
          namespace: options.namespace,
          secretName: WEBHOOK_CERT_SECRET_NAME,
          metadata: ownedByService(manager.client, options.namespace, WEBHOOK_SERVICE_NAME, COMPONENT_WEBHOOK_CERTIFICATE),
          ...subjectNames(options.namespace, url),
          validityMs: options.certValidityMs,
          caValidityMs: Math.max(DEFAULT_CA_VALIDITY_MS, options.certValidityMs * 3),
          publishCaBundle: async (bundle) => {
            caBundle = bundle;
            if (url) {
              await applyWebhookConfiguration(manager.client, {
                name: WEBHOOK_CONFIGURATION_NAME,
                target: { url: url.href },
                caBundle: bundle,
                failurePolicy: URL_MODE_FAILURE_POLICY,
                timeoutSeconds: URL_MODE_TIMEOUT_SECONDS,
                excludeNamespaces: [options.namespace],
              });
              return 'changed';
            }
            try {
              return (await patchCaBundle(manager.client, WEBHOOK_CONFIGURATION_NAME, bundle)) ? 'changed' : 'unchanged';
            } catch (error) {
              // The chart installs it; until it exists there is nothing to patch, and serving the
              // webhook (and reconciling) must not wait for it. The next check tries again.
              if (!isNotFound(error)) throw error;
              logger.warn({ name: WEBHOOK_CONFIGURATION_NAME }, 'MutatingWebhookConfiguration not found; caBundle not published yet');
              return 'missing';
            }
          },
          onCertificate: serve,
          logger,
        });
        certificate = await rotator.start();
        stopCertificates = () => rotator.stop();
      }
      server = await startWebhookServer({
        // Behind a Service the API server dials the pod IP; by URL, only that host is needed.
        host: url ? bareHost(url) : '0.0.0.0',
        port: options.port,
        certificate,
        lookup: cacheLookup(namespaces, integrations),
        settings: {
          ...options.sidecar,
          serverVersion: version,
          ...(options.fleetReports && { report: { url: reportUrl(options.namespace, url), caBundle: () => caBundle } }),
        },
        ...(options.fleetReports && { routes: { [REPORT_PATH]: options.fleetReports } }),
        logger,
        registry: options.registry,
        events: new AdmissionEvents({
          client: manager.client,
          recorder: new EventRecorder(manager.client, EVENT_REPORTING_CONTROLLER, options.identity),
          logger,
        }),
      });
      logger.info({ serverVersion: version.gitVersion, registeredBy: url ? url.href : 'service', certificates: options.certDir ?? 'self-managed' }, 'admission webhook ready');
      const running = server;
      return async () => {
        await running.close();
        await stopCertificates();
      };
    },
  };
}

/** The report endpoint: beside the webhook's URL, or on its Service (port 443), which the certificate names. */
export function reportUrl(namespace: string, url: URL | undefined): string {
  return url ? new URL(REPORT_PATH, url).href : `https://${WEBHOOK_SERVICE_NAME}.${namespace}.svc${REPORT_PATH}`;
}

/** `https://127.0.0.1:9443` → `https://127.0.0.1:9443/mutate-pods`; a URL with a path keeps it. */
export function webhookUrl(flag: string): URL {
  const url = new URL(flag);
  if (url.pathname === '/' || url.pathname === '') url.pathname = WEBHOOK_PATH;
  return url;
}

/** The Service's DNS names, plus the URL's host when registered by URL (an IP needs an IP SAN). */
export function subjectNames(namespace: string, url: URL | undefined): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = serviceDnsNames(WEBHOOK_SERVICE_NAME, namespace);
  if (!url) return { dnsNames, ipAddresses: [] };
  const host = bareHost(url);
  return isIP(host) ? { dnsNames, ipAddresses: [host] } : { dnsNames: [...dnsNames, host], ipAddresses: [] };
}

/** URL keeps an IPv6 host in brackets; a listen address and an IP SAN take it bare. */
function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}
