// Proxies as kubectl takes them: which server the environment's proxy applies to, and requests through
// real loopback proxies (an HTTP CONNECT proxy and a SOCKS5 proxy, written here) to a TLS server that
// checks the client certificate, so the tunnel carries the kubeconfig's TLS unchanged.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeKubeconfig } from '../../test/support/kubeconfig-file.ts';
import { createPki, type KeyPairPem, type Pki } from '../../test/support/pki.ts';
import { KubeClient } from './client.ts';
import { loadConnection } from './kubeconfig.ts';
import { proxyFromEnvironment } from './proxy.ts';

describe('the environment proxy', () => {
  const server = new URL('https://api.cluster.example:6443');
  const from = (env: NodeJS.ProcessEnv, url = server) => proxyFromEnvironment(url, env)?.href;

  it('is HTTPS_PROXY for an https server and HTTP_PROXY for an http one, upper case before lower', () => {
    expect(from({ HTTPS_PROXY: 'http://proxy:3128', HTTP_PROXY: 'http://other:3128' })).toBe('http://proxy:3128/');
    expect(from({ https_proxy: 'socks5://proxy:1080' })).toBe('socks5://proxy:1080');
    expect(from({ HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:1' })).toBe('http://upper:1/');
    expect(from({ HTTP_PROXY: 'http://other:3128' }, new URL('http://api.cluster.example:8080'))).toBe('http://other:3128/');
    expect(from({ HTTP_PROXY: 'http://other:3128' })).toBeUndefined();
    // As Go reads it: a bare host:port is an http proxy.
    expect(from({ HTTPS_PROXY: 'proxy.corp:3128' })).toBe('http://proxy.corp:3128/');
  });

  it('never applies to a loopback server', () => {
    const env = { HTTPS_PROXY: 'http://proxy:3128' };
    for (const url of ['https://127.0.0.1:6443', 'https://127.3.4.5:6443', 'https://localhost:6443', 'https://[::1]:6443']) expect(from(env, new URL(url))).toBeUndefined();
  });

  it('skips what NO_PROXY names: *, a domain and its subdomains, an IP, a CIDR range; a port is ignored', () => {
    const proxy = { HTTPS_PROXY: 'http://proxy:3128' };
    expect(from({ ...proxy, NO_PROXY: '*' })).toBeUndefined();
    expect(from({ ...proxy, NO_PROXY: 'example' })).toBeUndefined();
    expect(from({ ...proxy, NO_PROXY: '.cluster.example' })).toBeUndefined();
    expect(from({ ...proxy, no_proxy: 'other.example, api.cluster.example:6443' })).toBeUndefined();
    expect(from({ ...proxy, NO_PROXY: 'other.example,luster.example' })).toBe('http://proxy:3128/');
    const ip = new URL('https://10.96.0.1:443');
    expect(from({ ...proxy, NO_PROXY: '10.96.0.0/12' }, ip)).toBeUndefined();
    expect(from({ ...proxy, NO_PROXY: '10.96.0.1' }, ip)).toBeUndefined();
    expect(from({ ...proxy, NO_PROXY: '10.0.0.0/16,96.0.1' }, ip)).toBe('http://proxy:3128/');
  });

  it('is refused with the reason when its scheme is not one we speak', () => {
    expect(() => from({ HTTPS_PROXY: 'https://proxy:3128' })).toThrow('proxy https:// from the environment is not supported (http or socks5)');
  });
});

const dir = mkdtempSync(join(tmpdir(), 'breakwater-proxy-'));
const servers: Server[] = [];
let pki: Pki;
let admin: KeyPairPem;
let apiPort = 0;
/** The client certificate each request to the API server came with. */
const clients: string[] = [];

async function listen<S extends Server>(server: S): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function pipeTo(socket: Socket, target: string, head?: Buffer): Socket {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const upstream = connect(port, host);
  if (head?.length) upstream.write(head);
  socket.pipe(upstream).pipe(socket);
  socket.on('error', () => upstream.destroy());
  upstream.on('error', () => socket.destroy());
  return upstream;
}

/** An HTTP proxy that only tunnels (CONNECT), asking for `credentials` when given; records each CONNECT. */
async function connectProxy(credentials?: string): Promise<{ url: string; connects: { target: string; authorization?: string }[] }> {
  const connects: { target: string; authorization?: string }[] = [];
  const server = createHttpServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, socket: Socket, head: Buffer) => {
    connects.push({ target: req.url ?? '', ...(req.headers['proxy-authorization'] && { authorization: req.headers['proxy-authorization'] }) });
    if (credentials && req.headers['proxy-authorization'] !== `Basic ${Buffer.from(credentials).toString('base64')}`) {
      socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic\r\n\r\n');
      return;
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    pipeTo(socket, req.url ?? '', head);
  });
  return { url: `http://127.0.0.1:${await listen(server)}`, connects };
}

/** A SOCKS5 proxy (RFC 1928, with RFC 1929 username and password when given); records each CONNECT's target. */
async function socksProxy(credentials?: { user: string; password: string }): Promise<{ url: string; connects: string[] }> {
  const connects: string[] = [];
  const server = createNetServer((socket) => {
    let buffered = Buffer.alloc(0);
    let stage: 'greeting' | 'auth' | 'request' = 'greeting';
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (stage === 'greeting' && buffered.length >= 2 && buffered.length >= 2 + buffered[1]!) {
        const methods = [...buffered.subarray(2, 2 + buffered[1]!)];
        buffered = buffered.subarray(2 + buffered[1]!);
        const wanted = credentials ? 2 : 0;
        socket.write(Buffer.from([5, methods.includes(wanted) ? wanted : 0xff]));
        stage = credentials ? 'auth' : 'request';
      }
      if (stage === 'auth' && buffered.length >= 2) {
        const userLength = buffered[1]!;
        if (buffered.length < 3 + userLength) return;
        const passwordLength = buffered[2 + userLength]!;
        if (buffered.length < 3 + userLength + passwordLength) return;
        const user = buffered.subarray(2, 2 + userLength).toString();
        const password = buffered.subarray(3 + userLength, 3 + userLength + passwordLength).toString();
        buffered = buffered.subarray(3 + userLength + passwordLength);
        const ok = user === credentials!.user && password === credentials!.password;
        socket.write(Buffer.from([1, ok ? 0 : 1]));
        if (!ok) return socket.end();
        stage = 'request';
      }
      if (stage === 'request' && buffered.length >= 5) {
        const type = buffered[3];
        const length = type === 1 ? 4 : type === 4 ? 16 : 1 + buffered[4]!;
        if (buffered.length < 4 + length + 2) return;
        const address = type === 1 ? [...buffered.subarray(4, 8)].join('.') : buffered.subarray(5, 5 + buffered[4]!).toString();
        const port = buffered.readUInt16BE(4 + length);
        connects.push(`${address}:${port}`);
        socket.off('data', onData);
        const upstream = pipeTo(socket, `${address}:${port}`);
        upstream.once('connect', () => socket.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0])));
      }
    };
    socket.on('data', onData);
  });
  return { url: `socks5://127.0.0.1:${await listen(server)}`, connects };
}

function kubeconfigThrough(proxyUrl: string): string {
  const b64 = (pem: string) => Buffer.from(pem).toString('base64');
  return writeKubeconfig(
    dir,
    { server: `https://127.0.0.1:${apiPort}`, 'certificate-authority-data': b64(pki.caPem), 'tls-server-name': 'api.cluster.test', 'proxy-url': proxyUrl },
    { 'client-certificate-data': b64(admin.certPem), 'client-key-data': b64(admin.keyPem) },
  );
}

async function versionThrough(proxyUrl: string, calls = 1): Promise<unknown[]> {
  const client = new KubeClient({ kubeconfig: kubeconfigThrough(proxyUrl), userAgent: 'breakwater-test' });
  try {
    const answers: unknown[] = [];
    for (let i = 0; i < calls; i++) answers.push(await client.getJson('/version'));
    return answers;
  } finally {
    await client.close();
  }
}

beforeAll(async () => {
  pki = await createPki();
  admin = await pki.client('CN=laptop-admin');
  const serving = await pki.server('CN=api', { dns: ['api.cluster.test'] });
  apiPort = await listen(
    createHttpsServer({ cert: serving.certPem, key: serving.keyPem, ca: pki.caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      clients.push(String((req.socket as TLSSocket).getPeerCertificate().subject.CN));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"major":"1","minor":"35"}');
    }),
  );
});

afterAll(async () => {
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

describe('a kubeconfig proxy-url', () => {
  it('tunnels through an HTTP proxy with CONNECT, TLS and the client certificate inside, one tunnel for calls in a row', async () => {
    const proxy = await connectProxy();
    const before = clients.length;
    expect(await versionThrough(proxy.url, 3)).toEqual(Array(3).fill({ major: '1', minor: '35' }));
    expect(proxy.connects).toEqual([{ target: `127.0.0.1:${apiPort}` }]);
    expect(clients.slice(before)).toEqual(['laptop-admin', 'laptop-admin', 'laptop-admin']);
  });

  it('sends the proxy-url credentials as Proxy-Authorization, and says so when the proxy refuses', async () => {
    const proxy = await connectProxy('ops:s3cret');
    const [host] = proxy.url.replace('http://', '').split(':');
    const port = proxy.url.split(':').at(-1);
    expect(await versionThrough(`http://ops:s3cret@${host}:${port}`)).toEqual([{ major: '1', minor: '35' }]);
    expect(proxy.connects.at(-1)?.authorization).toBe(`Basic ${Buffer.from('ops:s3cret').toString('base64')}`);
    await expect(versionThrough(proxy.url)).rejects.toMatchObject({
      code: 'unreachable',
      message: expect.stringContaining(`proxy http://${host}:${port} to 127.0.0.1:${apiPort}: CONNECT answered 407 Proxy Authentication Required`),
    });
  });

  it('connects through a SOCKS5 proxy, with and without a username and password', async () => {
    const open = await socksProxy();
    expect(await versionThrough(open.url, 2)).toEqual(Array(2).fill({ major: '1', minor: '35' }));
    expect(open.connects).toEqual([`127.0.0.1:${apiPort}`]);
    const guarded = await socksProxy({ user: 'ops', password: 's3cret' });
    const port = guarded.url.split(':').at(-1);
    expect(await versionThrough(`socks5://ops:s3cret@127.0.0.1:${port}`)).toEqual([{ major: '1', minor: '35' }]);
    await expect(versionThrough(`socks5://ops:wrong@127.0.0.1:${port}`)).rejects.toMatchObject({
      message: expect.stringContaining('SOCKS5 proxy refused the username and password'),
    });
  });

  it('is refused at load, naming the cluster, when it is not a proxy we speak', () => {
    for (const [url, reason] of [
      ['https://proxy:3128', 'proxy-url scheme https: is not supported (http or socks5)'],
      ['ftp://proxy', 'proxy-url scheme ftp: is not supported (http or socks5)'],
      ['not a url', 'proxy-url "not a url" is not a URL'],
    ]) {
      expect(() => loadConnection({ file: kubeconfigThrough(url!), env: {} })).toThrow(`cluster "c": ${reason}`);
    }
  });
});
