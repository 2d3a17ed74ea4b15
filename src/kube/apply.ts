// Writes under our field manager: server-side apply of whole objects, merge patches of status.
// Every patch names its content type explicitly: without it the generated client sends
// application/json-patch+json, which the API server rejects for an object body.
import {
  Observable,
  PatchStrategy,
  setHeaderOptions,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import { FIELD_MANAGER, GROUP, PLURAL, VERSION } from '../api/names.ts';
import type { KubeClient } from './client.ts';

/** Per-call options that abort the request with `signal`. */
export function withSignal(
  signal: AbortSignal | undefined,
  options?: ConfigurationOptions<ObservableMiddleware>,
): ConfigurationOptions<ObservableMiddleware> | undefined {
  if (!signal) return options;
  // Shaped like client-node's own setHeaderMiddleware, so it composes with setHeaderOptions.
  const middleware: ObservableMiddleware = {
    pre: (context: RequestContext) => {
      context.setSignal(signal);
      return new Observable(Promise.resolve(context));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return { ...options, middleware: [...(options?.middleware ?? []), middleware], middlewareMergeStrategy: 'append' };
}

/** Server-side apply of a ConfigMap: creates it or brings the fields we own to `desired`. */
export function applyConfigMap(client: KubeClient, desired: V1ConfigMap & { metadata: { name: string; namespace: string } }, signal?: AbortSignal): Promise<V1ConfigMap> {
  return client.core.patchNamespacedConfigMap(
    {
      name: desired.metadata.name,
      namespace: desired.metadata.namespace,
      body: { apiVersion: 'v1', kind: 'ConfigMap', ...desired },
      fieldManager: FIELD_MANAGER,
      force: true,
    },
    withSignal(signal, setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply)),
  );
}

export interface StatusTarget {
  readonly namespace: string;
  readonly name: string;
}

/**
 * A merge patch of the `/status` subresource of an ExternalIntegration, under our field manager. A
 * merge patch replaces lists whole, which is what conditions need, and costs the API server less than
 * an apply. Status writes never bump `metadata.generation`, which is how the controller tells its own
 * writes from a user's edit.
 */
export async function patchIntegrationStatus(client: KubeClient, target: StatusTarget, status: object, signal?: AbortSignal): Promise<void> {
  await client.customObjects.patchNamespacedCustomObjectStatus(
    {
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: target.namespace,
      name: target.name,
      body: { status },
      fieldManager: FIELD_MANAGER,
    },
    withSignal(signal, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
  );
}
