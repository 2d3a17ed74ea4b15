// Dapr's sidecar, daprd, self-hosted in front of the origin as an `HTTPEndpoint` (Dapr's way to call a
// non-Dapr API), called through its invoke API as an app would. Two flavours: `daprd` with no policy,
// `daprd-policy` with a `Resiliency` equivalent to breakwater-full's where Dapr has the knob:
//   - timeout 2s per attempt (Dapr has no connect timeout or deadline over the retries);
//   - retry: 3 attempts in all on 429 and 502-504, 50 ms apart. Dapr's exponential backoff starts at
//     500 ms and cannot be set lower, so a constant interval is the closer match;
//   - circuit breaker: open after 5 consecutive failures, one probe after 30s;
//   - the same credential header, from the endpoint's headers.
// Dapr's Resiliency has no rate limit or bulkhead, so daprd-policy runs two policies fewer than
// breakwater-full. Its breaker counts a call the client abandoned as a failure, so autocannon closing
// its 32 connections at the end of a throughput round opens it, and the rounds after see only its
// fail-fast answers; the run flags them.
// No app, no actors, placement or scheduler; the kubernetes name resolver, because the default (mDNS)
// announces the app on the network; tracing off; every listener on 127.0.0.1; metrics on, as by
// default, on loopback.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild } from '../support/children.ts';
import { freePort, HOST, waitForOk } from '../support/net.ts';
import { rssBytes } from '../support/proc.ts';
import { ORIGIN_PATH, type Target } from '../support/target.ts';
import { CREDENTIAL, findPeer, goEnv, procsLabel } from './peers.ts';

export interface DaprdOptions {
  readonly policy: boolean;
  readonly originUrl: string;
  readonly tmp: string;
  /** GOMAXPROCS; 0 for Go's default. */
  readonly maxProcs: number;
}

/** The HTTPEndpoint's name: what the app invokes, and what the Resiliency targets. */
const ENDPOINT = 'vendor';

const CONFIGURATION = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: { name: bench }
spec:
  nameResolution: { component: kubernetes }
  tracing: { samplingRate: "0" }
`;

function httpEndpoint(originUrl: string, policy: boolean): string {
  const headers = policy ? `\n  headers:\n    - { name: ${CREDENTIAL.header}, value: "${CREDENTIAL.value}" }` : '';
  return `apiVersion: dapr.io/v1alpha1
kind: HTTPEndpoint
metadata: { name: ${ENDPOINT} }
spec:
  baseUrl: ${originUrl}${headers}
`;
}

const RESILIENCY = `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: { name: bench }
spec:
  policies:
    timeouts:
      attempt: 2s
    retries:
      threeAttempts:
        policy: constant
        duration: 50ms
        maxRetries: 2
        matching: { httpStatusCodes: "429,502-504" }
    circuitBreakers:
      fiveInARow:
        maxRequests: 1
        timeout: 30s
        trip: consecutiveFailures >= 5
  targets:
    apps:
      ${ENDPOINT}: { timeout: attempt, retry: threeAttempts, circuitBreaker: fiveInARow }
`;

/** Starts daprd, or returns why it is missing. */
export async function startDaprd({ policy, originUrl, tmp, maxProcs }: DaprdOptions): Promise<Target | string> {
  const found = findPeer('daprd');
  if (typeof found === 'string') return found;
  const name = policy ? 'daprd-policy' : 'daprd';
  const dir = join(tmp, name);
  const resources = join(dir, 'resources');
  mkdirSync(resources, { recursive: true });
  writeFileSync(join(resources, 'endpoint.yaml'), httpEndpoint(originUrl, policy));
  if (policy) writeFileSync(join(resources, 'resiliency.yaml'), RESILIENCY);
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, CONFIGURATION);
  const [http, grpc, internal, publicPort, metrics] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const args = [
    '--mode=standalone',
    `--app-id=${name}`,
    `--config=${configFile}`,
    `--resources-path=${resources}`,
    `--dapr-listen-addresses=${HOST}`,
    `--dapr-http-port=${http}`,
    `--dapr-grpc-port=${grpc}`,
    `--dapr-internal-grpc-listen-address=${HOST}`,
    `--dapr-internal-grpc-port=${internal}`,
    `--dapr-public-listen-address=${HOST}`,
    `--dapr-public-port=${publicPort}`,
    `--metrics-listen-address=${HOST}`,
    `--metrics-port=${metrics}`,
    '--dapr-graceful-shutdown-seconds=1',
    '--log-level=warn',
  ];
  const child = startChild(name, found.binary, args, { env: goEnv(maxProcs), cwd: dir }, join(dir, 'stderr.log'));
  const url = `http://${HOST}:${http}/v1.0/invoke/${ENDPOINT}/method${ORIGIN_PATH}`;
  try {
    await waitForOk(`http://${HOST}:${publicPort}/v1.0/healthz`, 30_000, () => child.process.exitCode === null);
    await waitForOk(url, 10_000, () => child.process.exitCode === null);
  } catch (error) {
    throw new Error(`${name}: ${(error as Error).message}\n${child.stderrTail()}`);
  }
  const what = policy ? 'Resiliency: timeout 2s, retry 3 on 429/502-504, breaker 5 in a row; credential header' : 'no Resiliency';
  return {
    name,
    description: `daprd ${found.version} self-hosted, invoke API → HTTPEndpoint, ${what}; ${procsLabel(maxProcs)}, metrics on loopback`,
    url,
    child,
    idleRssBytes: rssBytes(child.pid),
  };
}
