// A credential read from `<secrets-dir>/<name>/<key>`, the layout of a mounted Secret. Kubernetes rotates
// a mounted Secret by swapping a symlink, so the file is polled with stat (which follows the link) and
// re-read when it changes. The value is never logged.
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { SecretKeyRef } from '../api/resolve.ts';
import type { Logger } from '../runtime/logger.ts';

export function secretPath(secretsDir: string, ref: SecretKeyRef): string {
  return join(secretsDir, ref.name, ref.key);
}

export class SecretFile {
  readonly path: string;
  private current: string | undefined;
  private readonly logger: Logger;
  private readonly listener: (curr: Stats, prev: Stats) => void;

  constructor(path: string, pollMs: number, logger: Logger) {
    this.path = path;
    this.logger = logger;
    this.current = this.read();
    this.listener = () => {
      const before = this.current;
      this.current = this.read();
      if (this.current !== before) this.logger.info({ file: this.path }, 'credential reloaded');
    };
    watchFile(path, { interval: pollMs, persistent: false }, this.listener);
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
      this.logger.warn({ file: this.path, code: (error as NodeJS.ErrnoException).code }, 'credential file unreadable; calls go without it');
      return undefined;
    }
  }
}
