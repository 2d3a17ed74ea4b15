// The HTTPS server the API server calls with every Pod CREATE. It runs in every operator replica, not
// under leader election, so a Service in front of the replicas always finds one that answers. The
// serving certificate is swapped in place (setSecureContext) when it is rotated: no restart, no
// dropped connection.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, type Registry } from 'prom-client';
import { WEBHOOK_PATH } from '../api/names.ts';
import { listen } from '../runtime/listen.ts';
import { METRIC_PREFIX } from '../runtime/metrics.ts';
import type { Logger } from '../runtime/logger.ts';
import { admit, AdmissionDecodeError, decodeReview, encodeReview, type ContextLookup } from './admission.ts';
import type { AdmissionEvents } from './admission-events.ts';
import type { InjectSettings } from './inject.ts';

/** The API server sends whole Pods; anything this large is not an AdmissionReview we can use. */
export const MAX_REVIEW_BYTES = 8 * 1024 * 1024;

export interface ServingCertificate {
  readonly cert: string;
  readonly key: string;
}

export interface WebhookServerOptions {
  readonly host: string;
  readonly port: number;
  readonly certificate: ServingCertificate;
  readonly lookup: ContextLookup;
  readonly settings: InjectSettings;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Records warned admissions as Events on the pod's controller, where a user sees them. */
  readonly events?: AdmissionEvents;
  /** Further paths served on the same port and certificate (the fleet reports), by path. */
  readonly routes?: Readonly<Record<string, (req: IncomingMessage, res: ServerResponse) => void>>;
}

export interface WebhookServer {
  readonly port: number;
  /** Serves new connections with this certificate from now on. */
  setCertificate(certificate: ServingCertificate): void;
  close(): Promise<void>;
}

interface WebhookMetrics {
  readonly admissions: Counter<'result' | 'reason'>;
  readonly warned: Counter<'result'>;
  readonly duration: Histogram<'result'>;
}

export function webhookMetrics(registry: Registry): WebhookMetrics {
  return {
    admissions: new Counter({
      name: `${METRIC_PREFIX}webhook_admissions_total`,
      help: 'Pod admissions by outcome (injected, skipped, ignored, error) and reason.',
      labelNames: ['result', 'reason'],
      registers: [registry],
    }),
    warned: new Counter({
      name: `${METRIC_PREFIX}webhook_admission_warnings_total`,
      help: 'Pod admissions answered with warnings (an annotation typo, an unknown integration, …), by outcome.',
      labelNames: ['result'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: `${METRIC_PREFIX}webhook_admission_duration_seconds`,
      help: 'Time from the admission request to its response.',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { logger, lookup, settings } = options;
  const metrics = webhookMetrics(options.registry);

  const server: Server = createServer({ cert: options.certificate.cert, key: options.certificate.key }, (req, res) => {
    const started = process.hrtime.bigint();
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = Object.hasOwn(options.routes ?? {}, path) ? options.routes?.[path] : undefined;
    if (route) return route(req, res);
    if (path !== WEBHOOK_PATH) return reply(404, { error: 'not_found', message: `the webhook serves ${WEBHOOK_PATH}` });
    if (req.method !== 'POST') return reply(405, { error: 'method_not_allowed', message: 'POST an AdmissionReview' });

    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REVIEW_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_REVIEW_BYTES) {
        metrics.admissions.inc({ result: 'error', reason: 'bad-request' });
        return reply(413, { error: 'too_large', message: `AdmissionReview over ${MAX_REVIEW_BYTES} bytes` });
      }
      let request;
      try {
        request = decodeReview(Buffer.concat(chunks).toString('utf8'));
      } catch (error) {
        if (!(error instanceof AdmissionDecodeError)) throw error;
        metrics.admissions.inc({ result: 'error', reason: 'bad-request' });
        logger.warn({ err: error.message }, 'bad AdmissionReview');
        return reply(400, { error: error.code, message: error.message });
      }
      admit(request, { lookup, settings }).then((outcome) => {
        const { response, result, reason, message } = outcome;
        reply(200, encodeReview(response));
        metrics.admissions.inc({ result, reason });
        if (response.warnings) {
          metrics.warned.inc({ result });
          options.events?.record(request, outcome);
        }
        metrics.duration.observe({ result }, Number(process.hrtime.bigint() - started) / 1e9);
        const fields = { uid: request.uid, namespace: request.namespace, pod: request.name, result, reason, warnings: response.warnings };
        if (result === 'error') logger.error(fields, `admitted unchanged: ${message}`);
        else if (result === 'injected' || response.warnings) logger.info(fields, message);
        else logger.debug(fields, message);
      });
    });
  });
  // A handshake that fails (say, a client that does not trust the CA yet) is the client's problem,
  // not a reason to log at error level on every probe.
  server.on('tlsClientError', (error) => logger.debug({ err: error.message }, 'webhook TLS handshake failed'));

  await listen(server, options.port, options.host);
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: options.host, port, path: WEBHOOK_PATH }, 'webhook listening');
  return {
    port,
    setCertificate: (certificate) => server.setSecureContext({ cert: certificate.cert, key: certificate.key }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
