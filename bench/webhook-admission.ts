// Admission latency of the sidecar-injection webhook on loopback: 1,000 Pod admissions, one at a time
// over a keep-alive HTTPS connection as the API server sends them, each needing a full injection and
// JSON Patch. Prints p50/p90/p99/max; the aim is p99 < 10 ms.
//
//   node bench/webhook-admission.ts [admissions]
import { Agent, request } from 'node:https';
import { Registry } from 'prom-client';
import { loadavg } from 'node:os';
import { ANNOTATION_INJECT, INJECT_TRUE, WEBHOOK_PATH } from '../src/api/names.ts';
import { admit as admitInProcess, decodeReview } from '../src/operator/admission.ts';
import { SIDECAR_RESOURCES, type InjectSettings, type NamespaceIntegration } from '../src/operator/inject.ts';
import { startWebhookServer } from '../src/operator/webhook.ts';
import { createLogger } from '../src/runtime/logger.ts';
import { VERSION } from '../src/runtime/version.ts';
import { localhostCertificates } from '../test/support/injection.ts';
import { percentiles } from './support/stats.ts';

const ADMISSIONS = Number(process.argv[2] ?? 1000);
const WARMUP = 100;

const integrations: NamespaceIntegration[] = ['stripe', 'fan-courier', 'geocoding'].map((name) => ({
  metadata: { name },
  spec: { upstream: { url: `https://${name}.example` }, auth: { secretRef: { name: `${name}-key`, key: 'token' } } },
}));
const lookup = () => ({ namespace: { metadata: { name: 'shop' } }, integrations });
const settings: InjectSettings = {
  image: `breakwater:${VERSION}`,
  mode: 'auto',
  serverVersion: { major: 1, minor: 35 },
  ...SIDECAR_RESOURCES,
  logLevel: 'info',
  version: VERSION,
};

function review(i: number): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${i}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { generateName: 'checkout-7d9f-', namespace: 'shop', labels: { app: 'checkout' }, annotations: { [ANNOTATION_INJECT]: INJECT_TRUE } },
        spec: {
          containers: [
            {
              name: 'app',
              image: 'registry.example/checkout:1',
              env: [{ name: 'MODE', value: 'prod' }],
              resources: { requests: { cpu: '100m', memory: '128Mi' } },
              volumeMounts: [{ name: 'kube-api-access-x', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
            },
          ],
          volumes: [{ name: 'kube-api-access-x', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }],
        },
      },
    },
  });
}

const { caBundle, cert, key } = await localhostCertificates();
const server = await startWebhookServer({
  host: '127.0.0.1',
  port: 0,
  certificate: { cert, key },
  lookup,
  settings,
  logger: createLogger({ level: 'silent', name: 'bench' }),
  registry: new Registry(),
});
const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: caBundle });

function admit(i: number): Promise<number> {
  const body = review(i);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, path: WEBHOOK_PATH, method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
          const response = (JSON.parse(text) as { response?: { patch?: string } }).response;
          if (res.statusCode !== 200 || !response?.patch) reject(new Error(`admission ${i}: ${res.statusCode} ${text.slice(0, 200)}`));
          else resolve(elapsed);
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

for (let i = 0; i < WARMUP; i++) await admit(i);
const samples: number[] = [];
const wall = performance.now();
for (let i = 0; i < ADMISSIONS; i++) samples.push(await admit(WARMUP + i));
const wallMs = performance.now() - wall;
agent.destroy();
await server.close();

// The same work without HTTP and TLS: decode, inject, diff, encode. Separates our code from the transport.
const inProcess: number[] = [];
for (let i = 0; i < ADMISSIONS; i++) {
  const started = process.hrtime.bigint();
  const outcome = await admitInProcess(decodeReview(review(i)), { lookup, settings });
  JSON.stringify(outcome.response);
  inProcess.push(Number(process.hrtime.bigint() - started) / 1e6);
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`.padStart(9);
console.log(`webhook admission latency: ${ADMISSIONS} Pod admissions after ${WARMUP} warm-up, one at a time`);
console.log(`node ${process.version}, ${integrations.length} integrations in the namespace, every Pod injected, load average ${loadavg()[0]!.toFixed(1)}`);
console.log(`                                    p50       p90       p99       max`);
const overHttps = percentiles(samples);
for (const [label, p] of [['HTTPS on 127.0.0.1 (keep-alive)', overHttps], ['in process (no HTTP/TLS)', percentiles(inProcess)]] as const) {
  console.log(`  ${label.padEnd(32)}${fmt(p.p50)} ${fmt(p.p90)} ${fmt(p.p99)} ${fmt(p.max)}`);
}
console.log(`  ${(ADMISSIONS / (wallMs / 1000)).toFixed(0)} admissions/s over HTTPS; aim p99 < 10 ms: ${overHttps.p99 < 10 ? 'met' : 'NOT met'}`);
