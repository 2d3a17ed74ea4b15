// Timeouts that all have the same length, on one Node timer: every call of an integration starts a
// total deadline and a per-attempt timeout of the integration's lengths, so its timeouts expire in the
// order they started. Each takes a place at the end of a list, leaves it in O(1) when its call or
// attempt ends first, and the one timer is armed for the list's head only. A setTimeout per call and
// per attempt made 0.7 KB of garbage per call (a Timeout, its arguments, the timer list's entry);
// undici keeps fast timers of its own for the same reason, which tick about every half second, too
// coarse for timeouts of milliseconds (undici leaves those under a second to setTimeout). The timer is unref'd: a pending timeout never keeps the process alive. The
// clock is performance.now, monotonic as Node's timers are, so a step of the wall clock moves no deadline.

/** One timeout in a list, from `start` until it expires or is cleared. */
export class ListedTimeout<T> {
  readonly owner: T;
  /** When it expires, on performance.now's clock. */
  readonly at: number;
  /** In the list: neither expired nor cleared yet. */
  listed = true;
  prev: ListedTimeout<T> | undefined = undefined;
  next: ListedTimeout<T> | undefined = undefined;
  private readonly list: TimeoutList<T>;

  constructor(list: TimeoutList<T>, owner: T, at: number) {
    this.list = list;
    this.owner = owner;
    this.at = at;
  }

  /** Its time has come, though its list's timer may not have run yet. */
  due(): boolean {
    return this.listed && this.at <= performance.now();
  }

  /** Not needed any more (its call or attempt ended); once expired or cleared, does nothing. */
  clear(): void {
    this.list.remove(this);
  }
}

export class TimeoutList<T> {
  private readonly ms: number;
  private readonly expire: (owner: T) => void;
  private head: ListedTimeout<T> | undefined = undefined;
  private tail: ListedTimeout<T> | undefined = undefined;
  private timer: NodeJS.Timeout | undefined = undefined;
  private readonly onTimer = (): void => this.fire();

  /** Timeouts of `ms` each; `expire` runs for the owner of each one that expires. */
  constructor(ms: number, expire: (owner: T) => void) {
    this.ms = ms;
    this.expire = expire;
  }

  start(owner: T): ListedTimeout<T> {
    const timeout = new ListedTimeout(this, owner, performance.now() + this.ms);
    if (this.tail === undefined) this.head = timeout;
    else {
      this.tail.next = timeout;
      timeout.prev = this.tail;
    }
    this.tail = timeout;
    // An armed timer fires no later than this one's time: every timeout before it expires sooner. A
    // timeout started by an `expire` while the timer runs is not the head: fire() arms for the head.
    if (this.timer === undefined && this.head === timeout) this.arm(this.ms);
    return timeout;
  }

  remove(timeout: ListedTimeout<T>): void {
    if (!timeout.listed) return;
    timeout.listed = false;
    if (timeout.prev === undefined) this.head = timeout.next;
    else timeout.prev.next = timeout.next;
    if (timeout.next === undefined) this.tail = timeout.prev;
    else timeout.next.prev = timeout.prev;
    timeout.prev = timeout.next = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.onTimer, ms);
    this.timer.unref();
  }

  /**
   * Expires what is due, and arms the timer for the next. A cleared timeout leaves the timer armed for
   * it, which then finds a later head or none: calls one at a time do not each arm and clear a timer.
   */
  private fire(): void {
    this.timer = undefined;
    const now = performance.now();
    let due = this.head;
    while (due !== undefined && due.at <= now) {
      this.remove(due);
      this.expire(due.owner);
      due = this.head;
    }
    // Node's millisecond timers may fire a fraction of a millisecond before this clock reads the time;
    // an `expire` that started a timeout in a list it had emptied has armed the timer for it already.
    if (due !== undefined && this.timer === undefined) this.arm(Math.max(1, Math.ceil(due.at - now)));
  }
}
