// Which calls may be sent twice: the configured (idempotent) methods always, any other method only when
// the caller vouches for it with the idempotency header (the vendor then deduplicates).

export class IdempotencyRule {
  /** Lower-cased, as Node delivers header names. */
  readonly header: string;
  private readonly methods: ReadonlySet<string>;

  constructor(methods: readonly string[], header: string) {
    this.methods = new Set(methods);
    this.header = header.toLowerCase();
  }

  allowsRetry(method: string, hasIdempotencyHeader: boolean): boolean {
    return hasIdempotencyHeader || this.methods.has(method);
  }
}
