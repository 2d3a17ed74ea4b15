// Watches the config file's directory rather than the file: Kubernetes updates a mounted ConfigMap by
// writing a new timestamped directory and renaming the `..data` symlink over the old one, so the file
// itself never changes and a watch on it would see nothing. Editors that save by rename are covered
// the same way. Events are debounced because both write in several steps.
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

export interface ConfigWatcher {
  close(): void;
}

export function watchConfig(file: string, debounceMs: number, onChange: () => void, onError: (error: Error) => void): ConfigWatcher {
  let timer: NodeJS.Timeout | undefined;
  const watcher: FSWatcher = watch(dirname(file), { persistent: false }, () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  watcher.on('error', onError);
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
