// A delivery as users see it: the JSON of GET /_breakwater/deliveries/<id>, of `breakwater deliveries
// show` and of each line of `export`. Times are ISO 8601. The request body is never shown (it stays in
// the store); the vendor's response body is, as text when its type is textual, else base64.
import type { Delivery, HistoryEntry, StoredResponse } from './store.ts';

const TEXTUAL = /^(text\/|application\/([\w.+-]*\+)?(json|xml|x-www-form-urlencoded)\b)/i;

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

function responseView(response: StoredResponse): Record<string, unknown> {
  const type = response.headers['content-type'] ?? '';
  const text = TEXTUAL.test(type);
  return {
    status: response.status,
    headers: response.headers,
    ...(response.body === null
      ? { bodyDropped: true }
      : { body: response.body.toString(text ? 'utf8' : 'base64'), ...(!text && { bodyEncoding: 'base64' }) }),
    ...(response.truncated && { truncated: true }),
  };
}

export function deliveryView(d: Delivery, history?: readonly HistoryEntry[]): Record<string, unknown> {
  return {
    delivery: d.id,
    integration: d.integration,
    state: d.state,
    ...(d.deadReason && { deadReason: d.deadReason }),
    attempts: d.attempts,
    idempotencyKey: d.idempotencyKey,
    ...(d.orderingKey !== undefined && { orderingKey: d.orderingKey }),
    request: { method: d.request.method, path: d.request.path },
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
    ...(d.state === 'queued' && { nextAttemptAt: iso(d.nextAttemptAt) }),
    expiresAt: iso(d.expiresAt),
    ...(d.endedAt !== undefined && { endedAt: iso(d.endedAt) }),
    ...(d.lastError !== undefined && { lastError: d.lastError }),
    ...(d.owner !== undefined && { heldBy: d.owner }),
    ...(d.response && { response: responseView(d.response) }),
    ...(d.callback && { callback: { url: d.callbackUrl, state: d.callback.state, attempts: d.callback.attempts } }),
    ...(history && { history: history.map((h) => ({ ...h, at: iso(h.at) })) }),
  };
}
