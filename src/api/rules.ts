// Cross-field rules are CEL in the CRD (the API server enforces them on `kubectl apply`) and a
// TypeScript twin here (the validator enforces them on files the sidecar and `breakwater validate`
// read). A rule is attached to the schema node it checks, so both sides find it in the same place, and
// the CRD test runs every fixture through both to prove the twins agree.

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

/** CEL for "the value of field `f`, or its default when unset". */
export function celOr(field: string, fallback: string | number): string {
  const literal = typeof fallback === 'string' ? `'${fallback}'` : String(fallback);
  return `(has(self.${field}) ? self.${field} : ${literal})`;
}
