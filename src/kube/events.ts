// Records events.k8s.io/v1 Events on an object, as `kubectl describe` and `kubectl events` show them.
import { randomBytes } from 'node:crypto';
import type { EventsV1Event } from '@kubernetes/client-node';
import type { KubeClient } from './client.ts';
import { microTime } from './micro-time.ts';
import { collectionPath, EVENTS } from './resources.ts';

export interface EventTarget {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
}

export interface EventDetails {
  readonly type: 'Normal' | 'Warning';
  /** CamelCase, e.g. the Ready condition's reason. */
  readonly reason: string;
  /** What the controller did: `Reconcile`. */
  readonly action: string;
  readonly note: string;
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly controller: string;
  private readonly instance: string;

  constructor(client: KubeClient, reportingController: string, reportingInstance: string) {
    this.client = client;
    this.controller = reportingController;
    this.instance = reportingInstance;
  }

  async record(target: EventTarget, details: EventDetails, signal?: AbortSignal): Promise<void> {
    const now = new Date();
    // The generated type says Date; on the wire eventTime is a MicroTime string.
    const body: Omit<EventsV1Event, 'eventTime'> & { eventTime: string } = {
      metadata: {
        // The naming scheme client-go uses: the object's name and a unique suffix.
        name: `${target.name}.${now.getTime().toString(16)}${randomBytes(4).toString('hex')}`,
        namespace: target.namespace,
      },
      eventTime: microTime(now),
      type: details.type,
      reason: details.reason,
      action: details.action,
      note: details.note.slice(0, 1024),
      reportingController: this.controller,
      reportingInstance: this.instance.slice(0, 128),
      regarding: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        namespace: target.namespace,
        name: target.name,
        uid: target.uid,
        resourceVersion: target.resourceVersion,
      },
    };
    await this.client.requestJson('POST', collectionPath(EVENTS, target.namespace), { body, signal });
  }
}
