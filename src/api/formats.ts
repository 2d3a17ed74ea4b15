// The string formats the resource and the fleet report use, registered with TypeBox once for every
// check of either: a format it does not know fails every value ("Unknown format"), so an
// ExternalIntegration as `kubectl get -o yaml` prints it, status included, was refused.
import { FormatRegistry } from '@sinclair/typebox';

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

/** RFC 3339 date-time, as the API server checks it: a real day of a real month, a real time of day. */
export function isDateTime(value: string): boolean {
  const m = DATE_TIME.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour < 24 && minute < 60 && second < 61;
}

if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', isDateTime);
