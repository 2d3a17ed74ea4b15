// The vendor leg of one integration: one undici Pool (keep-alive, capped connections, connect timeout,
// TLS originated for https with SNI and an optional CA), and the upstream's base path.
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import type { ResolvedSpec } from '../api/resolve.ts';
import type { Logger } from '../runtime/logger.ts';
import { secretPath } from './credentials.ts';

export interface UpstreamOptions {
  readonly secretsDir: string;
  readonly maxConnections: number;
  readonly logger: Logger;
}

export class Upstream {
  readonly pool: Pool;
  readonly origin: string;
  /** Path of the upstream URL without its trailing slash: '' for a bare host. */
  private readonly basePath: string;

  constructor(spec: ResolvedSpec, options: UpstreamOptions) {
    const url = new URL(spec.upstream.url);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    const tls = spec.upstream.tls;
    if (tls?.insecureSkipVerify) options.logger.warn({ upstream: this.origin }, 'TLS certificate verification is off (insecureSkipVerify)');
    this.pool = new Pool(this.origin, {
      connections: options.maxConnections,
      // Our per-attempt timeout owns time-to-headers; undici's timer has one-second resolution.
      headersTimeout: 0,
      connect: {
        timeout: spec.timeouts.connectMs,
        ...(url.protocol === 'https:' && {
          // undici sends the URL's host as SNI itself; an explicit serverName overrides it.
          ...(tls?.serverName && { servername: tls.serverName }),
          rejectUnauthorized: !tls?.insecureSkipVerify,
          ...(tls?.caSecretRef && { ca: readFileSync(secretPath(options.secretsDir, tls.caSecretRef), 'utf8') }),
        }),
      },
    });
  }

  /** The vendor path for the part of the proxied URL after the integration name. */
  path(rest: string): string {
    if (rest === '' || rest.charCodeAt(0) === 63 /* ? */) return (this.basePath || '/') + rest;
    return this.basePath + rest;
  }

  /** Stops taking requests; those in flight finish first. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
