// Baseline: what a Node user reaches for first, http-proxy 1.18.1 as a bare passthrough. It is given a
// keep-alive agent, because its default (`agent: false`) opens a new vendor connection per request and
// would make the comparison unfair to it. Usage: node http-proxy.ts ORIGIN_URL; prints {"port":N}.
import { Agent, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import httpProxy from 'http-proxy';

const target = process.argv[2];
if (!target) throw new Error('usage: http-proxy.ts ORIGIN_URL');

const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const proxy = httpProxy.createProxyServer({ target, agent });
// Without an 'error' listener http-proxy re-throws and the process dies.
proxy.on('error', (_error, _req, res) => {
  if ('writeHead' in res && !res.headersSent) res.writeHead(502);
  res.end();
});

const server = createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: (server.address() as AddressInfo).port })));
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
