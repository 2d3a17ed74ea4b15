// The vendor every target sits in front of: a plain node:http server answering at once, so that what
// the figures show is the cost of the hop, not of the vendor. It runs in its own process, apart from
// both the proxy under test and the load generator. `/fail…` answers 503 for the breaker scenario.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const OK = JSON.stringify({ ok: true, service: 'origin', items: [1, 2, 3] });
const FAIL = JSON.stringify({ error: 'vendor_down' });

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  // Drain what the client sent so the connection can be reused.
  req.resume();
  if (url.startsWith('/fail')) {
    res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(FAIL) }).end(FAIL);
  } else {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(OK) }).end(OK);
  }
});
// Longer than any pool's idle timeout, so connections are closed by the proxies, not by the vendor.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
});
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
