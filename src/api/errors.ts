// The errors the sidecar itself answers with (docs/design.md, "The sidecar"): one table from code to HTTP status.
// The sidecar's error responder and the error table of docs/reference.md both read it.

export const SIDECAR_ERRORS = {
  unknown_integration: { status: 404, meaning: 'The first path segment names no integration.' },
  bad_request: { status: 400, meaning: 'The request could not be proxied as sent.' },
  request_too_large: { status: 413, meaning: 'The body exceeds --max-request-body.' },
  rate_limited: { status: 429, meaning: 'No rate-limit token within maxQueueWait (or at once, with reject).' },
  bulkhead_full: { status: 503, meaning: 'maxConcurrent calls in flight and maxQueued waiting.' },
  circuit_open: { status: 503, meaning: 'The breaker is open; the vendor is not called.' },
  credentials_unavailable: {
    status: 503,
    meaning: 'A secret file the integration needs (auth.secretRef, upstream.tls.caSecretRef) cannot be read; the vendor is not called.',
  },
  deadline_exceeded: { status: 504, meaning: 'timeouts.total passed before the vendor answered.' },
  upstream_unreachable: { status: 502, meaning: 'No response from the vendor after every attempt.' },
  store_unavailable: { status: 503, meaning: 'A Prefer: respond-async call could not be stored durably; it was not accepted.' },
  backlog_full: { status: 503, meaning: 'The integration holds delivery.maxBacklog deliveries not yet ended; the call was not accepted.' },
  delivery_not_found: { status: 404, meaning: 'No delivery with this id (GET /_breakwater/deliveries/<id>).' },
} as const;

export type SidecarErrorCode = keyof typeof SIDECAR_ERRORS;
