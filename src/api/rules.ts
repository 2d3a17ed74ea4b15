// Cross-field rules are CEL in the CRD (the API server enforces them on `kubectl apply`) and a
// TypeScript twin here (the validator enforces them on files the sidecar and `breakwater validate`
// read). A rule is attached to the schema node it checks, so both sides find it in the same place, and
// the CRD test runs every fixture through both to prove the twins agree.

import { DURATION_PATTERN } from './duration.ts';

export interface Rule {
  /** CEL over `self`, the value at the schema node. */
  readonly cel: string;
  readonly message: string;
  /** Reported under this field of `self` (`.perAttempt`) instead of the node itself. */
  readonly fieldPath?: string;
  // Each rule narrows `self` to the node's own type; `any` lets the rules list hold them all.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly holds: (self: any) => boolean;
}

/** The schema option under which rules are attached; stripped from the CRD and turned into CEL. */
export const RULES_KEY = 'x-breakwater-rules';
/** The schema option holding a friendlier message for a failed `pattern`/`enum`; stripped from the CRD. */
export const MESSAGE_KEY = 'x-breakwater-message';

/**
 * `rule`, evaluated only when every one of `durations` (CEL string expressions) is a well-formed
 * duration. The API server runs CEL rules even on a value its `pattern` already rejected, and
 * `duration()` of a malformed string fails with a bare "type conversion error"; guarded, the user sees
 * the pattern's message alone. CEL's `||` absorbs an error on one side when the other is true.
 */
export function celWithDurations(durations: readonly string[], rule: string): string {
  const wellFormed = durations.map((d) => `${d}.matches(r'${DURATION_PATTERN}')`).join(' && ');
  return `!(${wellFormed}) || ${rule}`;
}

/** CEL for "the value of field `f`, or its default when unset". */
export function celOr(field: string, fallback: string | number): string {
  const literal = typeof fallback === 'string' ? `'${fallback}'` : String(fallback);
  return `(has(self.${field}) ? self.${field} : ${literal})`;
}
