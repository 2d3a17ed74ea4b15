// cert-manager mode: the chart mounts a cert-manager Certificate's Secret and cert-manager's CA
// injector fills the caBundle, so the operator only reads the files and serves what they hold. A
// mounted Secret is updated by the kubelet through a symlink swap, which file watchers miss, so the
// files are re-read on a short interval instead.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../runtime/logger.ts';
import type { ServingCertificate } from './webhook.ts';

export const CERT_FILE = 'tls.crt';
export const KEY_FILE = 'tls.key';
export const CERT_FILES_POLL_MS = 10_000;

export class CertificateFilesError extends Error {
  override readonly name = 'CertificateFilesError';
  readonly code = 'certificate_files';
}

export async function readCertificateFiles(dir: string): Promise<ServingCertificate> {
  try {
    const [cert, key] = await Promise.all([readFile(join(dir, CERT_FILE), 'utf8'), readFile(join(dir, KEY_FILE), 'utf8')]);
    return { cert, key };
  } catch (error) {
    throw new CertificateFilesError(`reading ${CERT_FILE} and ${KEY_FILE} in ${dir}: ${(error as Error).message}`, { cause: error });
  }
}

export interface CertificateFilesWatch {
  readonly certificate: ServingCertificate;
  stop(): void;
}

/** Reads the files now, then calls onChange whenever their content changes. */
export async function watchCertificateFiles(
  dir: string,
  onChange: (certificate: ServingCertificate) => void,
  logger: Logger,
  pollMs: number = CERT_FILES_POLL_MS,
): Promise<CertificateFilesWatch> {
  let current = await readCertificateFiles(dir);
  const timer = setInterval(() => {
    readCertificateFiles(dir).then(
      (next) => {
        if (next.cert === current.cert && next.key === current.key) return;
        current = next;
        logger.info({ dir }, 'webhook certificate files changed');
        onChange(next);
      },
      // Half-written during a swap, or briefly missing: keep serving the last good pair.
      (error: Error) => logger.warn({ err: error.message }, 'webhook certificate files unreadable'),
    );
  }, pollMs);
  timer.unref();
  return { certificate: current, stop: () => clearInterval(timer) };
}
