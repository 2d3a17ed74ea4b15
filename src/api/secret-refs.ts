// The Secrets an ExternalIntegration references, listed once: the reconciler checks they exist, the
// webhook mounts them into the sidecar.
import type { ExternalIntegrationSpec } from './schema.ts';

export interface SecretRef {
  /** The field that names the Secret, for messages a user can act on. */
  readonly path: string;
  readonly name: string;
}

/**
 * Every Secret the spec names, CA bundle first. Read defensively, so a caller may pass a spec straight
 * from the API server's cache, valid or not: a missing or empty name is left out.
 */
export function secretRefs(spec: ExternalIntegrationSpec | undefined): SecretRef[] {
  const refs: [string, unknown][] = [
    ['spec.upstream.tls.caSecretRef.name', spec?.upstream?.tls?.caSecretRef?.name],
    ['spec.auth.secretRef.name', spec?.auth?.secretRef?.name],
  ];
  return refs.flatMap(([path, name]) => (typeof name === 'string' && name !== '' ? [{ path, name }] : []));
}
