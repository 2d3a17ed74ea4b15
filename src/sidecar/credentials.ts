// Files read from `<secrets-dir>/<name>/<key>`, the layout of a mounted Secret: the auth credential and
// the vendor's CA bundle. Kubernetes rotates a mounted Secret by swapping a symlink, so the file is
// polled with stat (which follows the link) and re-read when it changes. The content is never logged.
import { existsSync, readdirSync, readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
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
  private lastError: NodeJS.ErrnoException | undefined;
  private readonly secretName: string;
  private readonly logger: Logger;
  private readonly listener: (curr: Stats, prev: Stats) => void;

  constructor(secretsDir: string, ref: SecretKeyRef, options: SecretFileOptions) {
    this.path = secretPath(secretsDir, ref);
    this.what = `${options.what} (secret ${ref.name}, key ${ref.key})`;
    this.secretName = ref.name;
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

  /**
   * Why the file cannot be read, in words that say what to do; empty while it can be read. Looked at
   * when asked (a failing call), since the poll sees only this file, not a Secret mounted without it.
   */
  get problem(): string {
    return this.current === undefined && this.lastError ? this.diagnose(this.lastError) : '';
  }

  /** Unreadable because the Secret is not mounted at all: named after the pod started, so only a restart mounts it. */
  get notMounted(): boolean {
    return this.current === undefined && this.folderMissing();
  }

  close(): void {
    unwatchFile(this.path, this.listener);
  }

  // The webhook mounts every Secret the pod's integrations name when the pod is created, optional, so
  // the folder exists even while the Secret does not. No folder means the Secret was referenced after
  // the pod started: only a new pod gets it mounted.
  private folderMissing(): boolean {
    return !existsSync(dirname(this.path));
  }

  private read(): string | undefined {
    try {
      const value = readFileSync(this.path, 'utf8').replace(/\r?\n$/, '');
      this.lastError = undefined;
      return value;
    } catch (error) {
      this.lastError = error as NodeJS.ErrnoException;
      this.logger.warn(
        { file: this.path, code: this.lastError.code },
        `${this.what} unreadable: ${this.diagnose(this.lastError)}; calls fail with credentials_unavailable until it can be read`,
      );
      return undefined;
    }
  }

  private diagnose(error: NodeJS.ErrnoException): string {
    if (error.code !== 'ENOENT') return error.message;
    const folder = dirname(this.path);
    if (this.folderMissing()) return `secret ${this.secretName} is not mounted into this pod; restart the pod to mount a Secret referenced after it started`;
    const keys = readdirSync(folder).filter((entry) => !entry.startsWith('..'));
    return keys.length === 0
      ? `secret ${this.secretName} does not exist (or is empty)`
      : `secret ${this.secretName} has no key ${JSON.stringify(this.path.slice(folder.length + 1))} (keys: ${keys.join(', ')})`;
  }
}

/** A secret file the integration needs cannot be read, so the vendor is not called. */
export class CredentialsUnavailableError extends Error {
  override readonly name = 'CredentialsUnavailableError';
  readonly code = 'credentials_unavailable';
}
