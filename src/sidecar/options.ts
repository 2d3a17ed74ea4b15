// The sidecar's own settings (not an integration's policy): flags of `breakwater sidecar` and options of
// `startSidecar()`. Ports and paths are in src/api/names.ts; these are the rest, each with its unit.
import type { Logger } from '../runtime/logger.ts';
import type { Registry } from 'prom-client';
import type { PolicyOptions } from '../policy/pipeline.ts';
import type { FleetReporterOptions } from './fleet-report.ts';

export const SIDECAR_DEFAULTS = {
  /** Bytes of request body buffered so a retry can replay it; a larger body streams and is sent once. */
  retryBufferBytes: 1024 * 1024,
  /** Bytes of request body accepted at all; more gets 413 request_too_large. */
  maxRequestBodyBytes: 10 * 1024 * 1024,
  /** Longest wait for in-flight calls after SIGTERM. */
  drainTimeout: '20s',
  /** Share of completed calls logged at info (0 to 1). */
  logSampleRate: 1,
  /** Connections to one vendor at most; requests beyond wait in the pool's queue. */
  maxConnectionsPerUpstream: 256,
  /** How often a credential file is checked for rotation. */
  secretPollMs: 1000,
  /** Quiet time after a config file event before it is read (editors and kubelet write in steps). */
  configDebounceMs: 50,
  /** After refusing a request mid-body, how long the rest is read and dropped before the connection closes. */
  refusedBodyLingerMs: 5000,
  /** Where Prefer: respond-async calls are kept: the SQLite file under the data directory. */
  deliveryStore: 'sqlite:',
  /** Deliveries of one integration in flight at once, when it sets no bulkhead. */
  deliveryConcurrency: 16,
} as const;

export interface SidecarOptions {
  /** File of ExternalIntegration documents; watched and reloaded on change. */
  readonly configPath: string;
  readonly port: number;
  readonly adminPort: number;
  /** Where the admin server listens; every interface by default, as in a pod. */
  readonly adminHost?: string;
  /** A secret `name`'s `key` is the file `<secretsDir>/<name>/<key>`. */
  readonly secretsDir: string;
  /** Serve only these integrations of the file; all of them when undefined. */
  readonly integrations?: readonly string[];
  readonly logger: Logger;
  /** A fresh registry when not given. */
  readonly registry?: Registry;
  readonly retryBufferBytes?: number;
  readonly maxRequestBodyBytes?: number;
  readonly logSampleRate?: number;
  readonly maxConnectionsPerUpstream?: number;
  readonly secretPollMs?: number;
  readonly configDebounceMs?: number;
  /** Delivery store URL (sqlite:PATH); SIDECAR_DEFAULTS.deliveryStore when not given. */
  readonly deliveryStore?: string;
  /** Password of a redis:// store, when its URL holds none. */
  readonly deliveryStorePassword?: string;
  /** Where `sqlite:` keeps its file; DATA_DIR when not given. */
  readonly dataDir?: string;
  /** Report this pod's state to the operator for the fleet view (src/sidecar/fleet-report.ts). */
  readonly report?: Pick<FleetReporterOptions, 'url' | 'tokenFile' | 'ca' | 'heartbeatMs'>;
  /** Clock and jitter source of every integration's policy (tests make them deterministic). */
  readonly policy?: PolicyOptions;
}
