// Which calls may be sent twice: the configured (idempotent) methods always, any other method only when
// the caller vouches for it with the idempotency header (the vendor then deduplicates), or when the
// sidecar writes that header itself (retry.idempotencyKey: generate).

export class IdempotencyRule {
  /** Lower-cased, as Node delivers header names. */
  readonly header: string;
  private readonly methods: ReadonlySet<string>;
  private readonly generate: boolean;

  constructor(methods: readonly string[], header: string, generate = false) {
    this.methods = new Set(methods);
    this.header = header.toLowerCase();
    this.generate = generate;
  }

  allowsRetry(method: string, hasIdempotencyHeader: boolean): boolean {
    return hasIdempotencyHeader || this.methods.has(method);
  }

  /** The sidecar adds a key of its own: generate is on, and the call would not be retried without one. */
  addsKey(method: string, hasIdempotencyHeader: boolean): boolean {
    return this.generate && !hasIdempotencyHeader && !this.methods.has(method);
  }
}
