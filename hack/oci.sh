# Sourced by the image scripts: writes an OCI image layout tarball from root-filesystem folders, with
# no container engine. Reproducible: each layer is a tar with sorted entries, owner 0:0, mtime 0 and
# normalised modes, and the config records no time, so the same inputs give the same digest.

# oci_image OUT.tar REF CONFIG DIR...
#   CONFIG: the members of the image config's "config" object, e.g. '"User":"65532:65532"'.
#   Each DIR becomes one layer, in order. Modes in DIR are normalised to what umask 022 leaves,
#   except a tmp/ at its top, which is 1777 as in any image.
oci_image() {
  local out=$1 ref=$2 config=$3
  shift 3
  local work blobs dir digest size diff_ids="" layers="" config_digest config_size manifest_digest manifest_size
  work=$(mktemp -d "${TMPDIR:-/tmp}/breakwater-oci.XXXXXX")
  blobs=$work/oci/blobs/sha256
  mkdir -p "$blobs"
  for dir in "$@"; do
    chmod -R u+rwX,go+rX,go-w "$dir"
    [[ -d $dir/tmp ]] && chmod 1777 "$dir/tmp"
    tar -C "$dir" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu -cf "$work/layer.tar" .
    read -r digest size < <(_oci_blob "$work/layer.tar" "$blobs")
    diff_ids+="${diff_ids:+,}\"sha256:$digest\""
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$digest\",\"size\":$size}"
  done
  printf '{"architecture":"amd64","os":"linux","config":{%s},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$config" "$diff_ids" >"$work/config.json"
  read -r config_digest config_size < <(_oci_blob "$work/config.json" "$blobs")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$config_digest" "$config_size" "$layers" >"$work/manifest.json"
  read -r manifest_digest manifest_size < <(_oci_blob "$work/manifest.json" "$blobs")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$manifest_size" "$ref" "${ref##*:}" >"$work/oci/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
  mkdir -p "$(dirname "$out")"
  tar -C "$work/oci" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu -cf "$out.tmp" oci-layout index.json blobs
  mv -f "$out.tmp" "$out"
  rm -rf "$work"
  echo "image: $ref sha256:$manifest_digest ($(du -h "$out" | cut -f1)) in $out" >&2
}

_oci_blob() { # FILE BLOBS_DIR → moves FILE there under its digest; prints "digest size"
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$2/$digest"
  echo "$digest $size"
}
