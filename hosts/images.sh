#!/usr/bin/env bash
# images.sh: import offline image tarballs into MicroK8s's containerd and pin them, so the kubelet's
# image garbage collection (which stays on) never deletes an image this site cannot pull again.
#
# Env:
#   JHUB_IMAGE_DIR  required; directory on this host that holds the tarballs
#   JHUB_IMAGES     required; newline-separated "file sha256 ref[,ref...] [digest]" lines (file relative
#                   to JHUB_IMAGE_DIR; refs as containerd names them, e.g. docker.io/library/nginx:1.27.0;
#                   digest: the image's manifest digest from the lock, sha256:<64 hex>, or "-" when the lock
#                   has none, e.g. an image built at deploy time)
#   JHUB_IMPORT_TIMEOUT  optional, seconds per tarball (default 1800)
#   JHUB_PROGRESS_INTERVAL  optional, seconds (default 60) between "still running" lines of an import
# stdin: not read. stdout: nothing.
# Every file's sha256 is checked before anything is imported. A tarball with a digest is imported only
# when `ctr images ls` does not show every one of its refs at that digest; after the import each ref must
# be at the lock's digest (else a clear error, nothing pinned), and `<repository>@<digest>` is tagged too,
# the name the kubelet looks up for an image a pod names by digest. A tarball without a digest is imported
# only when its sha256 differs from the last import recorded on this node
# (/var/lib/jhub/images/<file>.sha256) or one of its refs is missing from containerd. Every name is then
# labelled io.cri-containerd.pinned=pinned.
# An import that fails, or gives a ref another digest than the lock's (or none), is undone before the
# error: every name it created is removed, and every name it moved is put back at the digest it had, from
# another name still at that digest (`<repository>@<digest>` is tagged for each lock ref first where no
# such name exists, and removed again after). No wrong image stays, under a name or pinned.
# The import names this host's platform (linux/amd64 or linux/arm64, from `uname -m`): a tarball whose
# index names platforms it holds no blobs for (a `docker save` under the containerd image store)
# imports only this one.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

PIN_LABEL="io.cri-containerd.pinned=pinned"
FILES=() SUMS=() REFS=() DIGESTS=() AT_NAMES=()

validate() {
  local line n=0 file sum refs digest ref parts
  require_env JHUB_IMAGE_DIR "the directory on this host that holds the image tarballs"
  is_abs_path "$JHUB_IMAGE_DIR" || die "JHUB_IMAGE_DIR must be an absolute path, got '$JHUB_IMAGE_DIR'"
  require_uint JHUB_IMPORT_TIMEOUT 1800
  while IFS= read -r line; do
    n=$((n + 1))
    [ -n "${line// /}" ] || continue
    read -r file sum refs digest _ <<<"$line"
    [[ "$file" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] ||
      die "JHUB_IMAGES line $n: '$file' must be a plain file name inside JHUB_IMAGE_DIR"
    [[ "${sum:-}" =~ ^[0-9a-f]{64}$ ]] || die "JHUB_IMAGES line $n: '${sum:-}' is not a sha256 (64 hex digits)"
    [ -n "${refs:-}" ] || die "JHUB_IMAGES line $n must be 'file sha256 ref[,ref...] [digest]', got '$line'"
    [ "${digest:--}" = - ] || [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] ||
      die "JHUB_IMAGES line $n: '$digest' is not a manifest digest (sha256: and 64 hex digits, or -)"
    IFS=, read -ra parts <<<"$refs"
    for ref in "${parts[@]}"; do
      [[ "$ref" =~ ^[a-z0-9][A-Za-z0-9._/:@-]*$ ]] || die "JHUB_IMAGES line $n: '$ref' is not an image reference"
    done
    FILES+=("$file") SUMS+=("$sum") REFS+=("$refs") DIGESTS+=("${digest:--}")
    if [ "${digest:--}" = - ]; then AT_NAMES+=(""); else AT_NAMES+=("$(digest_names "$refs" "$digest")"); fi
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

# repository_of REF: REF without its tag or digest (a registry's port stays)
repository_of() {
  local name="${1%%@*}" last
  last="${name##*/}"
  [[ "$last" != *:* ]] || name="${name%:*}"
  printf '%s' "$name"
}
# digest_names REFS DIGEST: "<repository>@DIGEST,..." for each repository of REFS not named so by REFS
digest_names() {
  local ref parts out="" name
  IFS=, read -ra parts <<<"$1"
  for ref in "${parts[@]}"; do
    name="$(repository_of "$ref")@$2"
    [[ ",$1,$out," == *",$name,"* ]] || out="$out${out:+,}$name"
  done
  printf '%s' "$out"
}

# IMAGES: "ref digest labels" lines from containerd (labels "-" when none)
list_images() {
  IMAGES="$(mk8s ctr --namespace k8s.io images ls 2>/dev/null | awk 'NR > 1 && NF >= 3 { print $1, $3, $NF }')" ||
    die "cannot list containerd images on $(uname -n) (is microk8s running?)"
}
has_ref() { awk -v r="$1" '$1 == r { found = 1 } END { exit !found }' <<<"$IMAGES"; }
# digest_of REF: the manifest digest containerd has REF at (empty when it has no REF)
digest_of() { awk -v r="$1" '$1 == r { print $2; exit }' <<<"$IMAGES"; }
is_pinned() { awk -v r="$1" -v l="$PIN_LABEL" '$1 == r && index("," $3 ",", "," l ",") { found = 1 } END { exit !found }' <<<"$IMAGES"; }

# up_to_date I: a tarball with a digest is there when containerd shows every ref at that digest; one
# without, when its sha256 is the last one imported here and every ref is there. Sets STALE (a reason).
up_to_date() {
  local i="$1" file="${FILES[$1]}" ref refs recorded="" have
  STALE=""
  IFS=, read -ra refs <<<"${REFS[$i]}"
  if [ "${DIGESTS[$i]}" != - ]; then
    for ref in "${refs[@]}"; do
      have="$(digest_of "$ref")"
      if [ -z "$have" ]; then
        # a first import says nothing more
        [ ! -f "$(record_file "$file")" ] || STALE="$ref is gone from containerd"
      elif [ "$have" != "${DIGESTS[$i]}" ]; then
        STALE="$ref is at ${have:0:19}, the lock says ${DIGESTS[$i]:0:19}"
      fi
      [ -n "$have" ] && [ -z "$STALE" ] || return 1
    done
    return 0
  fi
  [ ! -f "$(record_file "$file")" ] || recorded="$(cat "$(record_file "$file")")"
  for ref in "${refs[@]}"; do has_ref "$ref" || STALE="$ref is gone from containerd"; done
  if [ "$recorded" != "${SUMS[$i]}" ]; then
    STALE=""
    return 1
  fi
  [ -z "$STALE" ]
}

# other_name_at DIGEST NAME...: a name containerd has at DIGEST that is none of NAMES, preferring one
# whose labels are LABELS (env); empty when there is none
other_name_at() {
  local digest="$1"
  shift
  awk -v d="$digest" -v l="${LABELS:-}" -v skip="$(printf '%s\n' "$@")" '
    BEGIN { n = split(skip, s, "\n"); for (k = 1; k <= n; k++) if (s[k] != "") no[s[k]] = 1 }
    $2 == d && !($1 in no) { if ($3 == l) { print $1; found = 1; exit } if (any == "") any = $1 }
    END { if (!found && any != "") print any }' <<<"$IMAGES"
}

# keep_old I: before the import of tarball I, each of its refs that containerd has gets a second name at
# its digest (<repository>@<digest>, tagged unless some name outside the refs is there already), so an
# undo can put it back. Sets BEFORE (containerd's "name digest labels" lines) and KEEPERS (names tagged).
keep_old() {
  local i="$1" ref refs have keeper
  BEFORE="$IMAGES" KEEPERS=()
  IFS=, read -ra refs <<<"${REFS[$i]}"
  for ref in "${refs[@]}"; do
    have="$(digest_of "$ref")"
    keeper="$(repository_of "$ref")@$have"
    [ -n "$have" ] && [ -z "$(other_name_at "$have" "${refs[@]}")" ] || continue
    mk8s ctr --namespace k8s.io images tag "$ref" "$keeper" >/dev/null ||
      die "cannot tag $ref as $keeper on $(uname -n) before importing ${FILES[$i]}; nothing was imported"
    KEEPERS+=("$keeper")
    list_images
  done
}

# drop_keepers I: remove the names keep_old tagged, but a <repository>@<digest> the lock wants
drop_keepers() {
  local i="$1" keeper drop=()
  for keeper in "${KEEPERS[@]}"; do
    [[ ",${AT_NAMES[$i]}," == *",$keeper,"* ]] && [ "$(digest_of "$keeper")" = "${DIGESTS[$i]}" ] ||
      drop+=("$keeper")
  done
  [ "${#drop[@]}" = 0 ] || mk8s ctr --namespace k8s.io images rm "${drop[@]}" >/dev/null ||
    die "cannot remove ${drop[*]} on $(uname -n), the names kept while ${FILES[$i]} was imported"
}

# undo_import I: put every name the import of tarball I created or moved back as BEFORE had it (digest
# and labels, the pin among them); sets UNDONE (what was done, for the error)
undo_import() {
  local i="$1" name digest old source labels pairs removed=() restored=() lost=()
  list_images
  while read -r name digest _; do
    [[ -n "$name" && " ${KEEPERS[*]} " != *" $name "* ]] || continue
    read -r old labels <<<"$(awk -v r="$name" '$1 == r { print $2, $3; exit }' <<<"$BEFORE")"
    [ "${old:-}" != "$digest" ] || continue
    source=""
    [ -z "${old:-}" ] || source="$(LABELS="$labels" other_name_at "$old" "$name")"
    if [ -n "$source" ]; then
      mk8s ctr --namespace k8s.io images tag --force "$source" "$name" >/dev/null ||
        die "undoing the import of ${FILES[$i]} on $(uname -n): cannot put $name back at $old"
      restored+=("$name")
      list_images
      if [ "$labels" != - ] && [ "$(awk -v r="$name" '$1 == r { print $3 }' <<<"$IMAGES")" != "$labels" ]; then
        IFS=, read -ra pairs <<<"$labels"
        mk8s ctr --namespace k8s.io images label "$name" "${pairs[@]}" >/dev/null ||
          die "undoing the import of ${FILES[$i]} on $(uname -n): cannot label $name $labels again"
      fi
    else
      mk8s ctr --namespace k8s.io images rm "$name" >/dev/null ||
        die "undoing the import of ${FILES[$i]} on $(uname -n): cannot remove $name (at $digest)"
      if [ -n "${old:-}" ]; then lost+=("$name at $old"); else removed+=("$name"); fi
    fi
  done < <(printf '%s\n' "$IMAGES")
  list_images
  drop_keepers "$i"
  UNDONE="the import was undone"
  [ "${#removed[@]}" = 0 ] || UNDONE="$UNDONE; removed what it added: $(printf '%s, ' "${removed[@]}")"
  [ "${#restored[@]}" = 0 ] || UNDONE="${UNDONE%, }; put back at the digest they had: $(printf '%s, ' "${restored[@]}")"
  [ "${#lost[@]}" = 0 ] ||
    UNDONE="${UNDONE%, }; removed, as no other name kept the digest they had: $(printf '%s, ' "${lost[@]}")"
  UNDONE="${UNDONE%, }"
}

# ensure_imported I: import tarball I unless it is there, then check it (check_imported)
ensure_imported() {
  local i="$1" file="${FILES[$1]}" at
  if up_to_date "$i"; then
    at="sha256 ${SUMS[$i]:0:12}"
    [ "${DIGESTS[$i]}" = - ] || at="digest ${DIGESTS[$i]:0:19}"
    log "$file: already imported ($at), skipping"
    return 0
  fi
  [ -z "$STALE" ] || log "$file: $STALE, importing again"
  keep_old "$i"
  if ! with_progress "importing $file" timeout -k 10 "$JHUB_IMPORT_TIMEOUT" \
    microk8s ctr --namespace k8s.io images import --platform "$PLATFORM" "$(image_path "$file")" >/dev/null; then
    undo_import "$i"
    die "importing $file on $(uname -n) failed or took over ${JHUB_IMPORT_TIMEOUT}s; $UNDONE"
  fi
  log "$file: imported (sha256 ${SUMS[$i]:0:12})"
  list_images
  check_imported "$i"
}

# check_imported I: every ref the tarball gave is in containerd at the lock's digest, else the import is
# undone; then its sha256 is recorded, so a failed check is looked at again on the next run
check_imported() {
  local i="$1" ref refs have problem=""
  IFS=, read -ra refs <<<"${REFS[$i]}"
  for ref in "${refs[@]}"; do
    have="$(digest_of "$ref")"
    if ! has_ref "$ref"; then
      problem="${FILES[$i]} was imported but containerd has no image $ref; the lock lists a ref this tarball does not contain"
    elif [ "${DIGESTS[$i]}" != - ] && [ "$have" != "${DIGESTS[$i]}" ]; then
      problem="${FILES[$i]} was imported on $(uname -n), but containerd has $ref at $have while the lock says ${DIGESTS[$i]}; the tarball is not the image the lock names: bundle it again (scripts/bundle.py, then --check)"
    fi
    [ -z "$problem" ] || break
  done
  if [ -n "$problem" ]; then
    undo_import "$i"
    die "$problem. Nothing was pinned; $UNDONE"
  fi
  drop_keepers "$i"
  printf '%s\n' "${SUMS[$i]}" | ensure_file "$(record_file "${FILES[$i]}")" 644
}

# ensure_digest_names I: <repository>@<digest> names the lock's manifest too
ensure_digest_names() {
  local i="$1" ref refs names
  [ -n "${AT_NAMES[$i]}" ] || return 0
  IFS=, read -ra refs <<<"${REFS[$i]}"
  IFS=, read -ra names <<<"${AT_NAMES[$i]}"
  for ref in "${names[@]}"; do
    if [ "$(digest_of "$ref")" = "${DIGESTS[$i]}" ]; then
      log "$ref: already tagged, skipping"
      continue
    fi
    mk8s ctr --namespace k8s.io images tag --force "${refs[0]}" "$ref" >/dev/null
    log "$ref: tagged (the name a pod that asks for the image by digest finds)"
    TAGGED=1
  done
}

ensure_pinned() {
  local i="$1" ref refs
  IFS=, read -ra refs <<<"${REFS[$i]}${AT_NAMES[$i]:+,${AT_NAMES[$i]}}"
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
  TAGGED=0
  for i in "${!FILES[@]}"; do ensure_imported "$i"; done
  for i in "${!FILES[@]}"; do ensure_digest_names "$i"; done
  [ "$TAGGED" = 0 ] || list_images
  for i in "${!FILES[@]}"; do ensure_pinned "$i"; done
}

main "$@"
