// The first path segment names the integration; the rest (query included) is appended to its upstream.

export type Route =
  | {
      readonly ok: true;
      readonly name: string;
      /** Everything after the name, query included. */
      readonly rest: string;
      /** `rest` without its query: what logs show, as vendors' APIs put keys and personal data in queries. */
      readonly path: string;
    }
  | { readonly ok: false; readonly message: string };

// `.` and `..` segments (also percent-encoded) would let a caller climb out of the upstream's base path.
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

export function route(url: string | undefined): Route {
  if (url === undefined || url.charCodeAt(0) !== 47 /* / */) {
    return { ok: false, message: 'the request target must be a path: /<integration>/<path>' };
  }
  let end = 1;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 47 /* / */ || c === 63 /* ? */) break;
    end++;
  }
  if (end === 1) return { ok: false, message: 'the first path segment must name an integration: /<integration>/<path>' };
  const rest = url.slice(end);
  const query = rest.indexOf('?');
  const path = query === -1 ? rest : rest.slice(0, query);
  if ((path.includes('.') || path.includes('%')) && DOT_SEGMENT.test(path)) {
    return { ok: false, message: 'the path must not contain "." or ".." segments' };
  }
  return { ok: true, name: url.slice(1, end), rest, path };
}
