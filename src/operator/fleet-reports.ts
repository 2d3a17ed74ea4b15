// The fleet report endpoint (POST REPORT_PATH on the webhook's HTTPS server, so on every replica and
// behind the webhook Service): a sidecar sends its pod's per-integration state with its projected
// ServiceAccount token. The token is reviewed with the API server (TokenReview, our audience), and the
// pod it is bound to is the only pod the report may speak for: the body names no pod at all. Accepted
// reports become the pod's record (a Lease in the operator's namespace), which the leader aggregates.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { MAX_REPORT_BYTES, MISSED_HEARTBEATS, parseFleetReport, REPORT_MIN_INTERVAL_MS, type FleetReportAnswer } from '../api/fleet-report.ts';
import { REPORT_TOKEN_AUDIENCE } from '../api/names.ts';
import type { KubeClient } from '../kube/client.ts';
import { deleteFleetRecord, readFleetRecord, recordName, writeFleetRecord, type StoredLease } from '../kube/fleet-records.ts';
import type { Informer } from '../kube/informer.ts';
import { reviewPodToken, type TokenReviewResult } from '../kube/token-review.ts';
import type { Logger } from '../runtime/logger.ts';
import { METRIC_PREFIX } from '../runtime/metrics.ts';
import { sharesFor, type LiveRecord } from './fleet-aggregate.ts';

export const REPORT_ENDPOINT_DEFAULTS = {
  /** How long a review's answer is reused: a token is checked once, not on every heartbeat. */
  reviewCacheMs: 60_000,
  /** A refused token is remembered briefly too, so a forger cannot make us call the API server at will. */
  refusalCacheMs: 10_000,
  reviewCacheSize: 10_000,
  /**
   * TokenReviews this replica asks for per second, at most; beyond them a report with a token not yet
   * reviewed gets 429. A flood of made-up tokens cannot be turned into a flood on the API server.
   */
  reviewsPerSecond: 50,
} as const;

export interface FleetReportOptions {
  readonly client: KubeClient;
  /** Every pod's record, as this replica's informer sees them: who else shares a fleet-scoped quota. */
  readonly records?: Informer<StoredLease>;
  /** The operator's namespace, where the records live. */
  readonly namespace: string;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly now?: () => number;
}

type ReportResult = 'accepted' | 'unauthenticated' | 'not_a_pod' | 'bad_report' | 'too_large' | 'rate_limited' | 'error';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function fleetReportMetrics(registry: Registry): Counter<'result'> {
  return new Counter({
    name: `${METRIC_PREFIX}operator_fleet_reports_total`,
    help: 'Sidecar reports received, by result (accepted, unauthenticated, not_a_pod, bad_report, too_large, rate_limited, error).',
    labelNames: ['result'],
    registers: [registry],
  });
}

export function fleetReportHandler(options: FleetReportOptions): RequestHandler {
  const { client, logger } = options;
  const now = options.now ?? Date.now;
  const reports = fleetReportMetrics(options.registry);
  const reviews = new Map<string, { readonly result: TokenReviewResult; readonly until: number }>();
  const lastAccepted = new Map<string, number>();

  const liveRecords = (): LiveRecord[] =>
    (options.records?.list(options.namespace) ?? []).flatMap((lease) => {
      const record = readFleetRecord(lease);
      const parsed = record && parseFleetReport(record.report);
      if (!record || !parsed?.ok) return [];
      return [{
        podNamespace: record.podNamespace,
        podUid: record.podUid,
        lapsesAt: record.renewTime.getTime() + record.leaseDurationSeconds * 1000,
        integrations: parsed.report.integrations.map((i) => i.name),
      }];
    });
  let windowStart = 0;
  let reviewsInWindow = 0;

  /** The review's answer, or undefined when this second's reviews are spent. */
  const review = async (token: string): Promise<TokenReviewResult | undefined> => {
    const key = createHash('sha256').update(token).digest('hex');
    const cached = reviews.get(key);
    if (cached && cached.until > now()) return cached.result;
    if (now() - windowStart >= 1000) {
      windowStart = now();
      reviewsInWindow = 0;
    }
    if (++reviewsInWindow > REPORT_ENDPOINT_DEFAULTS.reviewsPerSecond) return undefined;
    const result = await reviewPodToken(client, token, REPORT_TOKEN_AUDIENCE);
    if (reviews.size >= REPORT_ENDPOINT_DEFAULTS.reviewCacheSize) {
      for (const [k, v] of reviews) if (v.until <= now()) reviews.delete(k);
      if (reviews.size >= REPORT_ENDPOINT_DEFAULTS.reviewCacheSize) reviews.delete(reviews.keys().next().value!);
    }
    reviews.set(key, { result, until: now() + (result.ok ? REPORT_ENDPOINT_DEFAULTS.reviewCacheMs : REPORT_ENDPOINT_DEFAULTS.refusalCacheMs) });
    return result;
  };

  return (req, res) => {
    const reply = (status: number, result: ReportResult, body: object, headers: Record<string, string> = {}) => {
      reports.inc({ result });
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    if (req.method !== 'POST') return reply(405, 'bad_report', { error: 'method_not_allowed', message: 'POST a report' });
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REPORT_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      void (async () => {
        if (!token) return reply(401, 'unauthenticated', { error: 'unauthenticated', message: 'send the pod\'s projected ServiceAccount token as Authorization: Bearer' });
        if (size > MAX_REPORT_BYTES) return reply(413, 'too_large', { error: 'too_large', message: `report over ${MAX_REPORT_BYTES} bytes` });
        const reviewed = await review(token);
        if (!reviewed) return reply(429, 'rate_limited', { error: 'rate_limited', message: 'too many new tokens to review; send the report again' }, { 'retry-after': '1' });
        if (!reviewed.ok) {
          logger.warn({ reason: reviewed.reason, from: req.socket.remoteAddress }, `fleet report refused: ${reviewed.message}`);
          return reply(reviewed.reason === 'unauthenticated' ? 401 : 403, reviewed.reason, { error: reviewed.reason, message: reviewed.message });
        }
        const { identity } = reviewed;
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reply(400, 'bad_report', { error: 'bad_report', message: 'body is not JSON' });
        }
        const parsed = parseFleetReport(body);
        if (!parsed.ok) return reply(400, 'bad_report', { error: 'bad_report', message: parsed.message });
        const at = now();
        if (parsed.report.leaving) {
          await deleteFleetRecord(client, options.namespace, recordName(identity.podUid));
          lastAccepted.delete(identity.podUid);
          logger.info({ namespace: identity.namespace, pod: identity.pod }, 'pod left the fleet');
          return reply(202, 'accepted', { shares: {} });
        }
        const previous = lastAccepted.get(identity.podUid);
        // The sidecar spaces its reports REPORT_MIN_INTERVAL_MS apart by its own clock, but they arrive as
        // fast as each was reviewed and read: refusing only what comes within half of it keeps a breaker's
        // report from waiting another second for that jitter, and still bounds a pod that floods.
        if (previous !== undefined && at - previous < REPORT_MIN_INTERVAL_MS / 2) {
          const wait = Math.ceil((REPORT_MIN_INTERVAL_MS - (at - previous)) / 1000);
          return reply(429, 'rate_limited', { error: 'rate_limited', message: `one report per pod per ${REPORT_MIN_INTERVAL_MS} ms` }, { 'retry-after': String(wait) });
        }
        lastAccepted.set(identity.podUid, at);
        // Forget pods that went quiet long ago; the map holds the live fleet only.
        if (lastAccepted.size > REPORT_ENDPOINT_DEFAULTS.reviewCacheSize) {
          for (const [uid, t] of lastAccepted) if (at - t > REPORT_ENDPOINT_DEFAULTS.reviewCacheMs) lastAccepted.delete(uid);
        }
        await writeFleetRecord(client, options.namespace, {
          podNamespace: identity.namespace,
          pod: identity.pod,
          podUid: identity.podUid,
          report: parsed.report,
          renewTime: new Date(at),
          leaseDurationSeconds: parsed.report.heartbeatSeconds * MISSED_HEARTBEATS,
        });
        const answer: FleetReportAnswer = { shares: sharesFor(identity, parsed.report, liveRecords(), at) };
        reply(202, 'accepted', answer);
      })().catch((error: unknown) => {
        logger.error({ err: error }, 'fleet report could not be stored');
        if (!res.headersSent) reply(503, 'error', { error: 'unavailable', message: 'the report could not be stored; send it again' });
      });
    });
  };
}
