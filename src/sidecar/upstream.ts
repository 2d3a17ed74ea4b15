// The vendor leg of one integration: an undici Pool (keep-alive, capped connections, connect timeout,
// TLS originated for https with SNI and an optional CA), and the upstream's base path. A CA bundle from
// a Secret is followed like the credential: when its content changes, a new pool trusting the new
// bundle takes the next calls, and the old one closes once the calls it carries have finished.
import { Pool, type buildConnector } from 'undici';
import type { ResolvedSpec } from '../api/resolve.ts';
import type { Logger } from '../runtime/logger.ts';
import { SecretFile } from './credentials.ts';

export interface UpstreamOptions {
  readonly secretsDir: string;
  readonly secretPollMs: number;
  readonly maxConnections: number;
  readonly logger: Logger;
}

export class Upstream {
  readonly origin: string;
  /** The CA bundle's file, when the spec names one; its value is undefined while it cannot be read. */
  readonly ca: SecretFile | undefined;
  /** Path of the upstream URL without its trailing slash: '' for a bare host. */
  private readonly basePath: string;
  private readonly maxConnections: number;
  private readonly connect: Partial<buildConnector.BuildOptions>;
  private readonly logger: Logger;
  private current: Pool;

  constructor(spec: ResolvedSpec, options: UpstreamOptions) {
    const url = new URL(spec.upstream.url);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    const tls = spec.upstream.tls;
    const https = url.protocol === 'https:';
    if (https && tls?.insecureSkipVerify) options.logger.warn({ upstream: this.origin }, 'TLS certificate verification is off (insecureSkipVerify)');
    this.maxConnections = options.maxConnections;
    this.logger = options.logger;
    this.connect = {
      timeout: spec.timeouts.connectMs,
      ...(https && {
        // undici sends the URL's host as SNI itself (none for an IP); an explicit serverName overrides it.
        ...(tls?.serverName && { servername: tls.serverName }),
        rejectUnauthorized: !tls?.insecureSkipVerify,
      }),
    };
    this.ca =
      https && tls?.caSecretRef
        ? new SecretFile(options.secretsDir, tls.caSecretRef, {
            what: 'CA bundle',
            pollMs: options.secretPollMs,
            logger: options.logger,
            onChange: () => this.replacePool(),
          })
        : undefined;
    this.current = this.createPool();
  }

  /** The pool for the next attempt. */
  get pool(): Pool {
    return this.current;
  }

  /** The vendor path for the part of the proxied URL after the integration name. */
  path(rest: string): string {
    if (rest === '' || rest.charCodeAt(0) === 63 /* ? */) return (this.basePath || '/') + rest;
    return this.basePath + rest;
  }

  /** Stops taking requests; those in flight finish first. */
  close(): Promise<void> {
    this.ca?.close();
    return this.current.close();
  }

  private createPool(): Pool {
    return new Pool(this.origin, {
      connections: this.maxConnections,
      // Our per-attempt timeout owns time-to-headers; undici's timer has one-second resolution.
      headersTimeout: 0,
      // While the bundle is unreadable no call is sent (credentials_unavailable); were one sent, an
      // empty list would trust nothing rather than fall back to the system roots.
      connect: this.ca ? { ...this.connect, ca: this.ca.value ?? [] } : this.connect,
    });
  }

  private replacePool(): void {
    const old = this.current;
    this.current = this.createPool();
    // close() lets the requests already on the old pool (and their response bodies) run to their end.
    old.close().catch((error: Error) => this.logger.warn({ err: error }, 'closing the replaced upstream pool failed'));
  }
}
