// The ExternalIntegration controller, assembled: which informers it reads, which events wake which
// namespace, and the namespace Reconciler.
import { CONFIG_MAP_NAME, EVENT_REPORTING_CONTROLLER } from '../api/names.ts';
import { EventRecorder } from '../kube/events.ts';
import type { InformerOptions } from '../kube/informer.ts';
import {
  CONFIG_MAPS,
  EXTERNAL_INTEGRATIONS,
  SECRET_METADATA,
  type SecretMetadata,
  type StoredConfigMap,
  type StoredIntegration,
} from '../kube/resources.ts';
import type { Logger } from '../runtime/logger.ts';
import { Controller } from './controller.ts';
import { enqueueNamespace } from './event-handler.ts';
import type { Manager } from './manager.ts';
import type { OperatorMetrics } from './metrics.ts';
import { generationChanged, namespaceWhere } from './predicate.ts';
import { namespaceReconciler, WriteMemo } from './reconcile.ts';
import { watch } from './source.ts';
import type { WorkQueueOptions } from './queue.ts';

export interface IntegrationControllerOptions {
  readonly logger: Logger;
  readonly metrics: OperatorMetrics;
  /** Written on Events as reportingInstance. */
  readonly identity: string;
  readonly informer?: Pick<InformerOptions, 'watchTimeoutSeconds' | 'watchdogMs' | 'backoff'>;
  readonly workers?: number;
  readonly queue?: WorkQueueOptions;
}

export function addIntegrationController(manager: Manager, options: IntegrationControllerOptions): Controller {
  const integrations = manager.informer<StoredIntegration>(EXTERNAL_INTEGRATIONS, options.informer);
  const secrets = manager.informer<SecretMetadata>(SECRET_METADATA, options.informer);
  const configMaps = manager.informer<StoredConfigMap>(CONFIG_MAPS, {
    ...options.informer,
    fieldSelector: `metadata.name=${CONFIG_MAP_NAME}`,
  });
  const logger = options.logger.child({ controller: 'externalintegration' });
  const controller = new Controller({
    name: 'externalintegration',
    logger,
    metrics: options.metrics,
    workers: options.workers,
    queue: options.queue,
    reconciler: namespaceReconciler({
      client: manager.client,
      integrations,
      secrets,
      configMaps,
      recorder: new EventRecorder(manager.client, EVENT_REPORTING_CONTROLLER, options.identity),
      logger,
      memo: new WriteMemo(),
    }),
    watches: [
      watch({ informer: integrations, handler: enqueueNamespace, predicates: [generationChanged] }),
      // A Secret matters only where integrations could name it.
      watch({
        informer: secrets,
        handler: enqueueNamespace,
        predicates: [namespaceWhere((ns) => integrations.list(ns).length > 0)],
      }),
      // Someone edited or deleted our ConfigMap: put it back.
      watch({ informer: configMaps, handler: enqueueNamespace }),
    ],
  });
  manager.addController(controller);
  return controller;
}
