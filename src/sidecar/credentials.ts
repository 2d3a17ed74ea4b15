// Files read from `<secrets-dir>/<name>/<key>`, the layout of a mounted Secret: the auth credential and
// the vendor's CA bundle. Kubernetes rotates a mounted Secret by swapping a symlink, so the file is
// polled with stat (which follows the link) and re-read when it changes. The content is never logged.
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { SecretKeyRef } from '../api/resolve.ts';
import type { Logger } from '../runtime/logger.ts';

function secretPath(secretsDir: string, ref: SecretKeyRef): string {
  return join(secretsDir, ref.name, ref.key);
}

export interface SecretFileOptions {
  /** What the file holds, for logs and readiness: "auth credential", "CA bundle". */
  readonly what: string;
  readonly pollMs: number;
  readonly logger: Logger;
  /** Called after the content changed (not for the first read). */
  readonly onChange?: () => void;
}

export class SecretFile {
  readonly path: string;
  readonly what: string;
  private current: string | undefined;
  private readonly logger: Logger;
  private readonly listener: (curr: Stats, prev: Stats) => void;

  constructor(secretsDir: string, ref: SecretKeyRef, options: SecretFileOptions) {
    this.path = secretPath(secretsDir, ref);
    this.what = `${options.what} (secret ${ref.name}, key ${ref.key})`;
    this.logger = options.logger;
    this.current = this.read();
    this.listener = () => {
      const before = this.current;
      this.current = this.read();
      if (this.current === before) return;
      if (this.current !== undefined) this.logger.info({ file: this.path }, `${options.what} reloaded`);
      options.onChange?.();
    };
    watchFile(this.path, { interval: options.pollMs, persistent: false }, this.listener);
  }

  /** The file's content without a trailing newline, or undefined while it cannot be read. */
  get value(): string | undefined {
    return this.current;
  }

  close(): void {
    unwatchFile(this.path, this.listener);
  }

  private read(): string | undefined {
    try {
      return readFileSync(this.path, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      this.logger.warn(
        { file: this.path, code: (error as NodeJS.ErrnoException).code },
        `${this.what} unreadable; calls fail with credentials_unavailable until it can be read`,
      );
      return undefined;
    }
  }
}
