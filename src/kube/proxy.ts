// Reaching the API server through a proxy, as kubectl does: the cluster's `proxy-url` in the kubeconfig
// is used for every request; without it, HTTPS_PROXY / HTTP_PROXY and NO_PROXY decide, as Go's
// http.ProxyFromEnvironment does, and a loopback server is never proxied. http (CONNECT) and socks5
// proxies are taken; an https proxy, which kubectl also takes, is refused with a clear message. The
// tunnel is written here because node:https has none and undici's ProxyAgent would bring back the HTTP
// client package the operator is kept free of (see transport.ts); SOCKS5 is in neither.
import { BlockList, connect, isIP, type Socket } from 'node:net';
import { KubeError } from './errors.ts';

// node:http as CommonJS, not as an ES module: see eslint.config.js.
const http = process.getBuiltinModule('node:http');

/** A CONNECT or SOCKS5 handshake that has not finished in this long fails the request. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

const SCHEMES = new Set(['http:', 'socks5:']);

/** The kubeconfig's `proxy-url`, checked: kubectl's schemes only. */
export function parseProxyUrl(value: string, cluster: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`cluster "${cluster}": proxy-url "${value}" is not a URL`);
  }
  if (!SCHEMES.has(url.protocol)) throw new Error(`cluster "${cluster}": proxy-url scheme ${url.protocol} is not supported (http or socks5)`);
  return url;
}

/** Go's ProxyFromEnvironment: the proxy for `server` from HTTPS_PROXY / HTTP_PROXY unless NO_PROXY covers it. */
export function proxyFromEnvironment(server: URL, env: NodeJS.ProcessEnv): URL | undefined {
  const host = server.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || isLoopback(host)) return undefined;
  const raw = server.protocol === 'https:' ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (!raw) return undefined;
  if (excluded(host, env.NO_PROXY ?? env.no_proxy ?? '')) return undefined;
  // Go takes a bare host:port for an http proxy.
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  if (!SCHEMES.has(url.protocol)) throw new KubeError(0, `proxy ${url.protocol}// from the environment is not supported (http or socks5)`, { code: 'no_config' });
  return url;
}

function isLoopback(host: string): boolean {
  const family = isIP(host);
  if (family === 4) return host.startsWith('127.');
  return family === 6 && (host === '::1' || /^::ffff:127\./i.test(host));
}

/** NO_PROXY: `*`, IP addresses, CIDR ranges, and host names matching themselves and their subdomains (a port is ignored). */
function excluded(host: string, noProxy: string): boolean {
  for (const rawEntry of noProxy.split(',')) {
    const entry = rawEntry.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      const [network, bits] = entry.split('/');
      const family = isIP(network!);
      const hostFamily = isIP(host);
      if (family && family === hostFamily) {
        const list = new BlockList();
        list.addSubnet(network!, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
        if (list.check(host, family === 4 ? 'ipv4' : 'ipv6')) return true;
      }
      continue;
    }
    const name = entry.replace(/^\[|\](:\d+)?$/g, '').replace(/:\d+$/, '').replace(/^\*?\./, '');
    const lower = host.toLowerCase();
    if (lower === name || (!isIP(lower) && lower.endsWith(`.${name}`))) return true;
  }
  return false;
}

/** A socket to `host:port` through `proxy`: an HTTP CONNECT tunnel or a SOCKS5 connection. */
export function tunnel(proxy: URL, host: string, port: number): Promise<Socket> {
  const opened = proxy.protocol === 'socks5:' ? socks5(proxy, host, port) : connectTunnel(proxy, host, port);
  return opened.catch((error: unknown) => {
    throw new KubeError(0, `proxy ${proxy.protocol}//${proxy.host} to ${host}:${port}: ${(error as Error).message}`, { cause: error });
  });
}

function connectTunnel(proxy: URL, host: string, port: number): Promise<Socket> {
  const target = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  const headers: Record<string, string> = { host: target };
  if (proxy.username) headers['proxy-authorization'] = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: proxy.hostname.replace(/^\[|\]$/g, ''), port: proxy.port || 80, method: 'CONNECT', path: target, headers, agent: false, timeout: HANDSHAKE_TIMEOUT_MS });
    req.once('connect', (res, socket) => {
      if (res.statusCode === 200) {
        socket.setTimeout(0);
        return resolve(socket);
      }
      socket.destroy();
      reject(new Error(`CONNECT answered ${res.statusCode} ${res.statusMessage ?? ''}`.trim()));
    });
    req.once('timeout', () => req.destroy(new Error(`no answer to CONNECT in ${HANDSHAKE_TIMEOUT_MS / 1000} s`)));
    req.once('error', reject);
    req.end();
  });
}

/** RFC 1928, with RFC 1929's username and password when the URL has them; the proxy resolves host names. */
function socks5(proxy: URL, host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: proxy.hostname.replace(/^\[|\]$/g, ''), port: Number(proxy.port || 1080) });
    socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => socket.destroy(new Error(`no SOCKS5 answer in ${HANDSHAKE_TIMEOUT_MS / 1000} s`)));
    const fail = (message: string) => socket.destroy(new Error(message));
    const user = decodeURIComponent(proxy.username);
    const password = decodeURIComponent(proxy.password);
    let buffered = Buffer.alloc(0);
    let stage: 'method' | 'auth' | 'connect' = 'method';
    const request = () => {
      const family = isIP(host);
      const address = family === 4 ? Buffer.from([1, ...host.split('.').map(Number)]) : family === 6 ? Buffer.concat([Buffer.from([4]), ipv6Bytes(host)]) : Buffer.concat([Buffer.from([3, Buffer.byteLength(host)]), Buffer.from(host)]);
      const portBytes = Buffer.from([port >> 8, port & 0xff]);
      socket.write(Buffer.concat([Buffer.from([5, 1, 0]), address, portBytes]));
      stage = 'connect';
    };
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (stage === 'method') {
        if (buffered.length < 2) return;
        const method = buffered[1];
        buffered = buffered.subarray(2);
        if (method === 0) return request();
        if (method === 2 && user) {
          socket.write(Buffer.concat([Buffer.from([1, Buffer.byteLength(user)]), Buffer.from(user), Buffer.from([Buffer.byteLength(password)]), Buffer.from(password)]));
          stage = 'auth';
          return;
        }
        return fail(method === 0xff ? 'SOCKS5 proxy accepts none of our authentication methods' : `SOCKS5 proxy chose method ${method}`);
      }
      if (stage === 'auth') {
        if (buffered.length < 2) return;
        if (buffered[1] !== 0) return fail('SOCKS5 proxy refused the username and password');
        buffered = buffered.subarray(2);
        return request();
      }
      // The reply: VER REP RSV ATYP BND.ADDR BND.PORT, whose length depends on ATYP.
      if (buffered.length < 5) return;
      const addressLength = buffered[3] === 1 ? 4 : buffered[3] === 4 ? 16 : 1 + buffered[4]!;
      if (buffered.length < 4 + addressLength + 2) return;
      if (buffered[1] !== 0) return fail(`SOCKS5 CONNECT failed with reply ${buffered[1]}`);
      socket.off('data', onData).off('error', reject).off('close', closed);
      socket.setTimeout(0);
      const rest = buffered.subarray(4 + addressLength + 2);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const closed = () => reject(new Error('SOCKS5 proxy closed the connection'));
    socket.on('data', onData);
    socket.once('connect', () => socket.write(user ? Buffer.from([5, 2, 0, 2]) : Buffer.from([5, 1, 0])));
    socket.once('error', reject);
    socket.once('close', closed);
  });
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail = ''] = address.split('::');
  const part = (s: string) => (s ? s.split(':') : []);
  const groups = [...part(head!), ...Array(8 - part(head!).length - part(tail).length).fill('0'), ...part(tail)];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}
