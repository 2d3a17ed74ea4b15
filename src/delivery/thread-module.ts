// Where a worker thread's module is: beside the module that starts it, as .ts when run from source
// and as .js in the built image, so the extension comes from the caller's own.

/** The URL of `name` beside the module at `from` (its import.meta.url), with that module's extension. */
export function besideModule(name: string, from: string): URL {
  const { pathname } = new URL(from);
  return new URL(`./${name}${pathname.slice(pathname.lastIndexOf('.'))}`, from);
}
