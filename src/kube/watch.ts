// One watch request: a stream of newline-delimited JSON events until the server ends it, the
// connection breaks or the caller aborts.
import type { KubeClient } from './client.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface RawWatchEvent {
  readonly type: WatchEventType;
  readonly object: unknown;
}

export interface WatchRequest {
  readonly path: string;
  readonly query: Record<string, string | number | boolean | undefined>;
  readonly accept?: string;
  readonly signal: AbortSignal;
}

/** Resolves when the server closes the stream cleanly; rejects on a transport error or abort. */
export async function streamWatch(client: KubeClient, request: WatchRequest, onEvent: (event: RawWatchEvent) => void): Promise<void> {
  const response = await client.stream(request.path, {
    query: { ...request.query, watch: true },
    accept: request.accept,
    signal: request.signal,
    verb: 'WATCH',
  });
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of response.chunks()) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) onEvent(JSON.parse(line) as RawWatchEvent);
      newline = pending.indexOf('\n');
    }
  }
}
