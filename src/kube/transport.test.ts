// The transport against loopback servers: a 401 that a fresh credential cures, one that it cannot, and
// TLS as a kubeconfig describes it (CA, tls-server-name, client certificate).
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeKubeconfig } from '../../test/support/kubeconfig-file.ts';
import { createPki, type Pki } from '../../test/support/pki.ts';
import { KubeClient } from './client.ts';
import { KubeError } from './errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'breakwater-transport-'));
const servers: Server[] = [];
afterAll(async () => {
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const kubeconfigFile = (cluster: object, user: object) => writeKubeconfig(dir, cluster, user);

describe('a 401', () => {
  /** Answers only `Bearer <accepted>`; records every Authorization it was sent. */
  let accepted = '';
  const seen: (string | undefined)[] = [];
  let port = 0;
  beforeAll(async () => {
    port = await listen(
      createHttpServer((req: IncomingMessage, res: ServerResponse) => {
        seen.push(req.headers.authorization);
        const ok = req.headers.authorization === `Bearer ${accepted}`;
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        res.end(JSON.stringify(ok ? { kind: 'Namespace' } : { kind: 'Status', message: 'Unauthorized' }));
      }),
    );
  });

  it('runs the exec plugin again and retries once with the new token', async () => {
    const runs = join(dir, 'runs');
    const plugin = join(dir, 'plugin');
    // token-1, token-2, … one per run; none expires, so only the 401 makes it run again.
    writeFileSync(
      plugin,
      `#!/bin/sh\necho run >> "${runs}"\nn=$(wc -l < "${runs}" | tr -d ' ')\n` +
        `echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"token-'$n'"}}'\n`,
    );
    chmodSync(plugin, 0o755);
    const client = new KubeClient({
      kubeconfig: kubeconfigFile({ server: `http://127.0.0.1:${port}` }, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin } }),
      userAgent: 'breakwater-test',
    });
    try {
      seen.length = 0;
      accepted = 'token-2';
      expect(await client.getJson('/api/v1/namespaces/default')).toEqual({ kind: 'Namespace' });
      expect(await client.getJson('/api/v1/namespaces/default')).toEqual({ kind: 'Namespace' });
      expect(seen).toEqual(['Bearer token-1', 'Bearer token-2', 'Bearer token-2']);
    } finally {
      await client.close();
    }
  });

  it('is the answer when the credential cannot change', async () => {
    const client = new KubeClient({ kubeconfig: kubeconfigFile({ server: `http://127.0.0.1:${port}` }, { token: 'revoked' }), userAgent: 'breakwater-test' });
    try {
      seen.length = 0;
      const error = await client.getJson('/api/v1/namespaces/default').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KubeError);
      expect(error).toMatchObject({ code: 'unauthorized', status: 401, message: 'GET /api/v1/namespaces/default: Unauthorized' });
      expect(seen).toEqual(['Bearer revoked']);
    } finally {
      await client.close();
    }
  });
});

describe('TLS from the kubeconfig', () => {
  let pki: Pki;
  let port = 0;
  const clients: string[] = [];
  beforeAll(async () => {
    pki = await createPki();
    const serving = await pki.server('CN=api', { dns: ['api.cluster.test'] });
    port = await listen(
      createHttpsServer({ cert: serving.certPem, key: serving.keyPem, ca: pki.caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
        clients.push(String((req.socket as TLSSocket).getPeerCertificate().subject.CN));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"major":"1","minor":"35"}');
      }),
    );
  });

  const b64 = (pem: string) => Buffer.from(pem).toString('base64');

  it('trusts certificate-authority-data, checks the name tls-server-name gives, and presents the client certificate', async () => {
    const admin = await pki.client('CN=laptop-admin');
    const cluster = { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': b64(pki.caPem), 'tls-server-name': 'api.cluster.test' };
    const client = new KubeClient({
      kubeconfig: kubeconfigFile(cluster, { 'client-certificate-data': b64(admin.certPem), 'client-key-data': b64(admin.keyPem) }),
      userAgent: 'breakwater-test',
    });
    try {
      expect(await client.getJson('/version')).toEqual({ major: '1', minor: '35' });
      expect(clients.at(-1)).toBe('laptop-admin');
    } finally {
      await client.close();
    }
  });

  it('refuses the server without tls-server-name: its certificate does not name 127.0.0.1', async () => {
    const admin = await pki.client('CN=laptop-admin');
    const cluster = { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': b64(pki.caPem) };
    const client = new KubeClient({
      kubeconfig: kubeconfigFile(cluster, { 'client-certificate-data': b64(admin.certPem), 'client-key-data': b64(admin.keyPem) }),
      userAgent: 'breakwater-test',
    });
    try {
      await expect(client.getJson('/version')).rejects.toMatchObject({ code: 'unreachable', message: 'GET /version: ERR_TLS_CERT_ALTNAME_INVALID' });
    } finally {
      await client.close();
    }
  });
});
