// Traefik v3, the Go reverse proxy a platform team might put in front of a vendor instead of a sidecar
// library, in two flavours: `traefik` routes only; `traefik-policy` adds middlewares equivalent to
// breakwater-full's policy, in the same order (rate limit → bulkhead → retry → breaker → attempt):
//   - timeouts: connect 1s and per attempt 2s on the servers transport; no retry starts after 5s;
//   - retry: 3 attempts in all on 429 and 502-504 and on network errors, idempotent methods only,
//     exponential from 50 ms;
//   - circuit breaker inside the retry, so every attempt counts, open for 30s. Traefik's breaker
//     trips on a ratio over its recent window, not on consecutive failures: half the attempts failing;
//   - rate limit and in-flight limit set as high as breakwater-full's, so neither triggers;
//   - the same credential header.
// The retry middleware copies each request body to replay it, into a buffer of maxRequestBodyBytes
// that it allocates whole for every call, bodiless GETs included (2 MiB by default). Unbounded (-1)
// reads only what was sent: for the benchmark's bodiless calls, Traefik's cheapest setting.
// Static and dynamic config are generated into a temporary directory; Traefik runs in the foreground
// as our child, listens on 127.0.0.1 only, with no API, dashboard, metrics or access log.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild } from '../support/children.ts';
import { freePort, HOST, waitForOk } from '../support/net.ts';
import { rssBytes } from '../support/proc.ts';
import { ORIGIN_PATH, type Target } from '../support/target.ts';
import { CREDENTIAL, findPeer, goEnv, procsLabel } from './peers.ts';

export interface TraefikOptions {
  readonly policy: boolean;
  readonly originUrl: string;
  readonly tmp: string;
  /** GOMAXPROCS; 0 for Go's default. */
  readonly maxProcs: number;
}

function staticConfig(port: number, dynamicFile: string): string {
  return `global: { checkNewVersion: false, sendAnonymousUsage: false }
entryPoints:
  web:
    address: "${HOST}:${port}"
    transport:
      lifeCycle: { graceTimeOut: 1s }
providers:
  file: { filename: "${dynamicFile}", watch: false }
log: { level: ERROR }
`;
}

const MIDDLEWARES = {
  credential: `headers: { customRequestHeaders: { ${CREDENTIAL.header}: "${CREDENTIAL.value}" } }`,
  limit: 'rateLimit: { average: 1000000, period: 1s, burst: 1000000, sourceCriterion: { requestHost: true } }',
  bulkhead: 'inFlightReq: { amount: 1000, sourceCriterion: { requestHost: true } }',
  retry: 'retry: { attempts: 3, initialInterval: 50ms, timeout: 5s, status: ["429", "502-504"], maxRequestBodyBytes: -1 }',
  breaker: 'circuitBreaker: { expression: "NetworkErrorRatio() > 0.5 || ResponseCodeRatio(500, 600, 0, 600) > 0.5", fallbackDuration: 30s, responseCode: 503 }',
};

function dynamicConfig(policy: boolean, originUrl: string): string {
  const names = Object.keys(MIDDLEWARES);
  return `http:
  routers:
    bench:
      entryPoints: [web]
      rule: "PathPrefix(\`/\`)"
      service: origin${policy ? `\n      middlewares: [${names.join(', ')}]` : ''}
  services:
    origin:
      loadBalancer:
        servers: [{ url: "${originUrl}" }]${policy ? '\n        serversTransport: attempt' : ''}
${
  policy
    ? `  serversTransports:
    attempt:
      forwardingTimeouts: { dialTimeout: 1s, responseHeaderTimeout: 2s }
  middlewares:
${Object.entries(MIDDLEWARES)
  .map(([name, spec]) => `    ${name}: { ${spec} }`)
  .join('\n')}
`
    : ''
}`;
}

/** Starts Traefik, or returns why it is missing. */
export async function startTraefik({ policy, originUrl, tmp, maxProcs }: TraefikOptions): Promise<Target | string> {
  const found = findPeer('traefik');
  if (typeof found === 'string') return found;
  const name = policy ? 'traefik-policy' : 'traefik';
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const dynamicFile = join(dir, 'dynamic.yml');
  writeFileSync(dynamicFile, dynamicConfig(policy, originUrl));
  const staticFile = join(dir, 'traefik.yml');
  writeFileSync(staticFile, staticConfig(port, dynamicFile));
  const child = startChild(name, found.binary, [`--configFile=${staticFile}`], { env: goEnv(maxProcs), cwd: dir }, join(dir, 'stderr.log'));
  const url = `http://${HOST}:${port}${ORIGIN_PATH}`;
  try {
    await waitForOk(url, 20_000, () => child.process.exitCode === null);
  } catch (error) {
    throw new Error(`${name}: ${(error as Error).message}\n${child.stderrTail()}`);
  }
  const what = policy
    ? 'timeouts 1s/2s/5s, retry 3 on 429/502-504, ratio breaker, rate limit 1M/s, in-flight 1000, credential header'
    : 'router and load balancer only';
  return {
    name,
    description: `Traefik ${found.version}, ${what}; ${procsLabel(maxProcs)}, no access log or metrics`,
    url,
    child,
    idleRssBytes: rssBytes(child.pid),
  };
}
