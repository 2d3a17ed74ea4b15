// Kubernetes MicroTime, as Lease and events.k8s.io Event times must be written: RFC 3339 with exactly
// six fractional digits. A Date's own ISO string has three, which the API server refuses there.
export function microTime(date: Date): string {
  return `${date.toISOString().slice(0, -1)}000Z`;
}
