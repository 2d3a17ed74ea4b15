// Hop-by-hop headers (RFC 9110 §7.6.1, plus the proxy and HTTP/2 upgrade ones): they describe one
// connection, so the sidecar never forwards them, and a credential may not be configured as one.
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'http2-settings',
];
