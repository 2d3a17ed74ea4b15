// The config file's life after startup: read it, tell new content from the same, load it into the
// integration table, watch its directory, and count each load. A config that does not load at startup
// is the operator's mistake to see at once (nothing binds); a later one that does not load leaves the
// previous one in service.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../runtime/logger.ts';
import { ConfigError, type IntegrationTable } from './config.ts';
import type { SidecarMetrics } from './metrics.ts';

/**
 * The config file's text, or undefined when there is no file yet: a pod whose namespace has no
 * ExternalIntegration has no ConfigMap to mount, and its sidecar must still start (a native sidecar
 * that exits keeps the app from starting) and serve the integrations once they are created. A file
 * that exists and cannot be read is a ConfigError like one that is invalid.
 */
async function readConfig(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(file, [(error as Error).message]);
  }
}

// Watches the config file's directory rather than the file: Kubernetes updates a mounted ConfigMap by
// writing a new timestamped directory and renaming the `..data` symlink over the old one, so the file
// itself never changes and a watch on it would see nothing. Editors that save by rename are covered
// the same way. Events are debounced because both write in several steps.
function watchDirectory(file: string, debounceMs: number, onChange: () => void, onError: (error: Error) => void): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(file), { persistent: false }, () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  watcher.on('error', onError);
  watcher.on('close', () => clearTimeout(timer));
  return watcher;
}

export interface ReloadOptions {
  readonly configPath: string;
  readonly table: IntegrationTable;
  readonly metrics: SidecarMetrics;
  readonly logger: Logger;
}

export class ConfigReloader {
  private readonly options: ReloadOptions;
  /** Kept to tell a change of content from the directory events of unrelated files. */
  private lastText: string | undefined;
  private watcher: FSWatcher | undefined;

  constructor(options: ReloadOptions) {
    this.options = options;
  }

  /** The startup load: throws ConfigError for a config that does not load. */
  async loadFirst(): Promise<void> {
    const { configPath, table, metrics, logger } = this.options;
    try {
      this.lastText = await readConfig(configPath);
      table.load(configPath, this.lastText ?? '');
    } catch (error) {
      metrics.configReloads.inc({ result: 'failure' });
      throw error;
    }
    metrics.configReloads.inc({ result: 'success' });
    if (this.lastText === undefined) logger.warn({ config: configPath }, 'config file does not exist yet; serving no integration until it does');
    else logger.info({ config: configPath, integrations: table.names() }, 'config loaded');
  }

  /** Loads each new content of the file `debounceMs` after its directory changes; `onReload` after each load. */
  watch(debounceMs: number, onReload: () => void): void {
    this.watcher = watchDirectory(
      this.options.configPath,
      debounceMs,
      () => {
        void this.reloadIfChanged(onReload);
      },
      (error) => this.options.logger.error({ err: error }, 'config watch failed; changes will not be picked up'),
    );
  }

  close(): void {
    this.watcher?.close();
  }

  // The directory also changes for unrelated files (and kubelet's temp entries), and a file caught
  // mid-replace cannot be read: only new content is loaded, and the next event brings the rest.
  private async reloadIfChanged(onReload: () => void): Promise<void> {
    const { configPath, table, metrics, logger } = this.options;
    const text = await readConfig(configPath).catch(() => undefined);
    if (text === undefined || text === this.lastText) return;
    this.lastText = text;
    try {
      table.load(configPath, text);
    } catch (error) {
      metrics.configReloads.inc({ result: 'failure' });
      logger.error(
        { config: configPath, problems: error instanceof ConfigError ? error.problems : [(error as Error).message] },
        'config rejected; the previous one stays in service',
      );
      return;
    }
    metrics.configReloads.inc({ result: 'success' });
    onReload();
    logger.info({ config: configPath, integrations: table.names() }, 'config reloaded');
  }
}
