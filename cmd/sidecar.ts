// `breakwater sidecar`: parse flags, load the config (invalid → message and exit before binding), serve
// the proxy on 127.0.0.1 and the admin port, log the bound addresses, drain on SIGTERM.
import {
  ALL_INTEGRATIONS,
  CONFIG_PATH,
  DATA_DIR,
  ENV_DELIVERY_STORE_PASSWORD,
  ENV_REPORT_CA,
  PROXY_HOST,
  PROXY_PORT,
  REPORT_TOKEN_PATH,
  SECRETS_DIR,
  SIDECAR_ADMIN_PORT,
} from '../src/api/names.ts';
import { REPORT_HEARTBEAT_BOUNDS } from '../src/api/fleet-report.ts';
import { StoreUrlError } from '../src/delivery/errors.ts';
import { ListenError } from '../src/runtime/listen.ts';
import { createLogger, LOG_LEVELS } from '../src/runtime/logger.ts';
import { parseFlags, usage, UsageError } from '../src/runtime/flags.ts';
import { waitForShutdown } from '../src/runtime/shutdown.ts';
import { ConfigError, SIDECAR_DEFAULTS, startSidecar } from '../src/sidecar/index.ts';

const FLAGS = {
  config: { type: 'string', default: CONFIG_PATH, description: 'file of ExternalIntegration documents, reloaded on change' },
  port: { type: 'port', default: PROXY_PORT, description: `proxy port, on ${PROXY_HOST} only` },
  'admin-port': { type: 'port', default: SIDECAR_ADMIN_PORT, description: '/metrics, /healthz and /readyz' },
  'secrets-dir': { type: 'string', default: SECRETS_DIR, description: "a secret name's key is the file <dir>/<name>/<key>" },
  integrations: { type: 'string', default: ALL_INTEGRATIONS, description: `comma-separated integrations to serve, as they appear in the file; ${ALL_INTEGRATIONS} for every one` },
  'log-level': { type: 'string', default: 'info', choices: LOG_LEVELS, description: 'least severe level logged' },
  'log-sample-rate': { type: 'string', default: String(SIDECAR_DEFAULTS.logSampleRate), description: 'share of calls logged at info, 0 to 1' },
  'retry-buffer': { type: 'integer', default: SIDECAR_DEFAULTS.retryBufferBytes, description: 'bytes of request body buffered for retries; larger bodies stream, attempted once' },
  'max-request-body': { type: 'integer', default: SIDECAR_DEFAULTS.maxRequestBodyBytes, description: 'larger request bodies get 413 request_too_large' },
  'drain-timeout': { type: 'duration', default: SIDECAR_DEFAULTS.drainTimeout, description: 'longest wait after SIGTERM for calls and deliveries in flight, together' },
  'delivery-store': { type: 'string', default: SIDECAR_DEFAULTS.deliveryStore, description: `where Prefer: respond-async calls are kept: sqlite:PATH, sqlite: for the file under --data-dir, or redis://HOST:PORT shared by sidecars (password in ${ENV_DELIVERY_STORE_PASSWORD})` },
  'data-dir': { type: 'string', default: DATA_DIR, description: 'directory of the sqlite: delivery store' },
  'report-url': { type: 'string', default: '', description: `the operator's fleet report endpoint (the webhook injects it); none: no reports. Its CA bundle comes in ${ENV_REPORT_CA}` },
  'report-token-file': { type: 'string', default: REPORT_TOKEN_PATH, description: 'the projected ServiceAccount token reports are sent with' },
  'report-interval': { type: 'duration', default: '10s', description: 'heartbeat: a report at least this often, and at once when a breaker changes state' },
} as const;

export async function sidecar(argv: readonly string[]): Promise<number> {
  const { values: flags, positionals } = parseFlags(FLAGS, argv);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}\n\n${usage('sidecar', FLAGS)}`);
  const sampleRate = Number(flags['log-sample-rate']);
  if (!(sampleRate >= 0 && sampleRate <= 1)) throw new UsageError(`--log-sample-rate must be between 0 and 1, got ${JSON.stringify(flags['log-sample-rate'])}`);
  const heartbeat = flags['report-interval'];
  if (heartbeat < REPORT_HEARTBEAT_BOUNDS.minSeconds * 1000 || heartbeat > REPORT_HEARTBEAT_BOUNDS.maxSeconds * 1000) {
    throw new UsageError(`--report-interval must be between ${REPORT_HEARTBEAT_BOUNDS.minSeconds}s and ${REPORT_HEARTBEAT_BOUNDS.maxSeconds}s, got ${heartbeat / 1000}s`);
  }
  const logger = createLogger({ level: flags['log-level'], name: 'breakwater-sidecar' });

  let sidecar;
  try {
    sidecar = await startSidecar({
      configPath: flags.config,
      port: flags.port,
      adminPort: flags['admin-port'],
      secretsDir: flags['secrets-dir'],
      ...(flags.integrations !== ALL_INTEGRATIONS && { integrations: flags.integrations.split(',').filter(Boolean) }),
      logger,
      logSampleRate: sampleRate,
      retryBufferBytes: flags['retry-buffer'],
      maxRequestBodyBytes: flags['max-request-body'],
      deliveryStore: flags['delivery-store'],
      dataDir: flags['data-dir'],
      ...(flags['report-url'] && {
        report: {
          url: flags['report-url'],
          tokenFile: flags['report-token-file'],
          heartbeatMs: flags['report-interval'],
          ...(process.env[ENV_REPORT_CA] && { ca: process.env[ENV_REPORT_CA] }),
        },
      }),
      // From the environment only: a flag's value shows in the process list.
      ...(process.env[ENV_DELIVERY_STORE_PASSWORD] && { deliveryStorePassword: process.env[ENV_DELIVERY_STORE_PASSWORD] }),
    });
  } catch (error) {
    if (error instanceof ListenError) {
      logger.error({ address: error.address, port: error.port, code: error.code }, error.message);
      logger.flush();
      return 1;
    }
    logger.flush();
    if (error instanceof ConfigError || error instanceof StoreUrlError) throw new UsageError(error.message);
    throw error;
  }
  logger.info({ proxy: `${PROXY_HOST}:${sidecar.port}`, admin: `:${sidecar.adminPort}` }, 'listening');
  // Lines are written in 4 KiB batches; whoever waits for the bound addresses should not wait for more.
  logger.flush();
  const graceMs = flags['drain-timeout'];
  return waitForShutdown({ logger, graceMs, drain: () => sidecar.drain(graceMs) });
}
