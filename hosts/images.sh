#!/usr/bin/env bash
# images.sh: import offline image tarballs into MicroK8s's containerd and pin them, so the kubelet's
# image garbage collection (which stays on) never deletes an image this site cannot pull again.
#
# Env:
#   JHUB_IMAGE_DIR  required; directory on this host that holds the tarballs
#   JHUB_IMAGES     required; newline-separated "file sha256 ref[,ref...]" lines (file relative to
#                   JHUB_IMAGE_DIR; refs as containerd names them, e.g. docker.io/library/nginx:1.27.0)
#   JHUB_IMPORT_TIMEOUT  optional, seconds per tarball (default 1800)
#   JHUB_PROGRESS_INTERVAL  optional, seconds (default 60) between "still running" lines of an import
# stdin: not read. stdout: nothing.
# Every file's sha256 is checked before anything is imported. A tarball is imported only when its
# sha256 differs from the last import recorded on this node (/var/lib/jhub/images/<file>.sha256) or one
# of its refs is missing from containerd; then every ref is labelled io.cri-containerd.pinned=pinned.
# The import names this host's platform (linux/amd64 or linux/arm64, from `uname -m`): a tarball whose
# index names platforms it holds no blobs for (a `docker save` under the containerd image store)
# imports only this one.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

PIN_LABEL="io.cri-containerd.pinned=pinned"
FILES=() SUMS=() REFS=()

validate() {
  local line n=0 file sum refs ref parts
  require_env JHUB_IMAGE_DIR "the directory on this host that holds the image tarballs"
  is_abs_path "$JHUB_IMAGE_DIR" || die "JHUB_IMAGE_DIR must be an absolute path, got '$JHUB_IMAGE_DIR'"
  require_uint JHUB_IMPORT_TIMEOUT 1800
  while IFS= read -r line; do
    n=$((n + 1))
    [ -n "${line// /}" ] || continue
    read -r file sum refs _ <<<"$line"
    [[ "$file" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] ||
      die "JHUB_IMAGES line $n: '$file' must be a plain file name inside JHUB_IMAGE_DIR"
    [[ "${sum:-}" =~ ^[0-9a-f]{64}$ ]] || die "JHUB_IMAGES line $n: '${sum:-}' is not a sha256 (64 hex digits)"
    [ -n "${refs:-}" ] || die "JHUB_IMAGES line $n must be 'file sha256 ref[,ref...]', got '$line'"
    IFS=, read -ra parts <<<"$refs"
    for ref in "${parts[@]}"; do
      [[ "$ref" =~ ^[a-z0-9][A-Za-z0-9._/:@-]*$ ]] || die "JHUB_IMAGES line $n: '$ref' is not an image reference"
    done
    FILES+=("$file") SUMS+=("$sum") REFS+=("$refs")
  done <<<"${JHUB_IMAGES:-}"
  [ "${#FILES[@]}" -gt 0 ] || die "JHUB_IMAGES is empty; list the tarballs to import"
}

# PLATFORM: this host's platform as OCI names it
host_platform() {
  local machine
  machine="$(uname -m)"
  case "$machine" in
  x86_64 | amd64) PLATFORM=linux/amd64 ;;
  aarch64 | arm64) PLATFORM=linux/arm64 ;;
  *) die "$(uname -n) is a machine $machine; jhub imports images for linux/amd64 or linux/arm64 only" ;;
  esac
}

image_path() { printf '%s/%s' "$(rootp "$JHUB_IMAGE_DIR")" "$1"; }
record_file() { state_dir "/images/$1.sha256"; }
# a hash is remembered with the file's size, inode, mtime and ctime (ns), so an unchanged multi-GB tarball is not re-hashed
verified_file() { state_dir "/images/$1.verified"; }

# verify_all: every tarball must be present with the sha256 the lock names, before any import
verify_all() {
  local i path stamp have errors=()
  for i in "${!FILES[@]}"; do
    path="$(image_path "${FILES[$i]}")"
    if [ ! -f "$path" ]; then
      errors+=("${FILES[$i]}: missing (expected at $JHUB_IMAGE_DIR/${FILES[$i]})")
      continue
    fi
    stamp="$(stat -c '%s %i %y %z' "$path")"
    if [ -f "$(verified_file "${FILES[$i]}")" ] &&
      [ "$(cat "$(verified_file "${FILES[$i]}")")" = "${SUMS[$i]} $stamp" ]; then
      continue
    fi
    log "checking sha256 of ${FILES[$i]}"
    have="$(sha256sum "$path" | awk '{ print $1 }')"
    if [ "$have" != "${SUMS[$i]}" ]; then
      errors+=("${FILES[$i]}: sha256 is $have but the lock says ${SUMS[$i]}; copy the file again")
      continue
    fi
    printf '%s %s\n' "$have" "$stamp" | ensure_file "$(verified_file "${FILES[$i]}")" 644
  done
  if [ "${#errors[@]}" -gt 0 ]; then
    die "image tarballs in $JHUB_IMAGE_DIR on $(uname -n) do not match the lock: $(printf '%s; ' "${errors[@]}")nothing was imported"
  fi
}

# IMAGES: "ref labels" lines from containerd (labels "-" when none)
list_images() {
  IMAGES="$(mk8s ctr --namespace k8s.io images ls 2>/dev/null | awk 'NR > 1 { print $1, $NF }')" ||
    die "cannot list containerd images on $(uname -n) (is microk8s running?)"
}
has_ref() { awk -v r="$1" '$1 == r { found = 1 } END { exit !found }' <<<"$IMAGES"; }
is_pinned() { awk -v r="$1" -v l="$PIN_LABEL" '$1 == r && index("," $2 ",", "," l ",") { found = 1 } END { exit !found }' <<<"$IMAGES"; }

ensure_imported() {
  local i="$1" file="${FILES[$1]}" ref refs missing="" recorded=""
  [ ! -f "$(record_file "$file")" ] || recorded="$(cat "$(record_file "$file")")"
  IFS=, read -ra refs <<<"${REFS[$i]}"
  for ref in "${refs[@]}"; do has_ref "$ref" || missing="$ref"; done
  if [ "$recorded" = "${SUMS[$i]}" ] && [ -z "$missing" ]; then
    log "$file: already imported (sha256 ${SUMS[$i]:0:12}), skipping"
    return 0
  fi
  if [ -n "$missing" ] && [ "$recorded" = "${SUMS[$i]}" ]; then
    log "$file: $missing is gone from containerd, importing again"
  fi
  with_progress "importing $file" timeout -k 10 "$JHUB_IMPORT_TIMEOUT" \
    microk8s ctr --namespace k8s.io images import --platform "$PLATFORM" "$(image_path "$file")" >/dev/null ||
    die "importing $file on $(uname -n) failed or took over ${JHUB_IMPORT_TIMEOUT}s"
  printf '%s\n' "${SUMS[$i]}" | ensure_file "$(record_file "$file")" 644
  log "$file: imported (sha256 ${SUMS[$i]:0:12})"
  IMPORTED=1
}

ensure_pinned() {
  local i="$1" ref refs
  IFS=, read -ra refs <<<"${REFS[$i]}"
  for ref in "${refs[@]}"; do
    has_ref "$ref" ||
      die "${FILES[$i]} was imported but containerd has no image $ref; the lock lists a ref this tarball does not contain"
    if is_pinned "$ref"; then
      log "$ref: already pinned, skipping"
    else
      mk8s ctr --namespace k8s.io images label "$ref" "$PIN_LABEL" >/dev/null
      log "$ref: pinned ($PIN_LABEL), so image garbage collection keeps it"
    fi
  done
}

main() {
  local i
  validate
  host_platform
  verify_all
  list_images
  IMPORTED=0
  for i in "${!FILES[@]}"; do ensure_imported "$i"; done
  [ "$IMPORTED" = 0 ] || list_images
  for i in "${!FILES[@]}"; do ensure_pinned "$i"; done
}

main "$@"
