#!/usr/bin/env bash
# cleanup.sh: remove the bundle copies jhub uploaded to this host (snaps and image tarballs), when the
# node leaves the stack or the stack is destroyed and MicroK8s itself stays (removeOnDestroy: false).
#
# Env:
#   JHUB_BUNDLE_DIR   optional, absolute path (default /var/lib/jhub/bundle); only a path under
#                     /var/lib/jhub is accepted, so a wrong value can never remove anything else
# stdin: not read. stdout: nothing.
# Running it again is a no-op.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

main() {
  local dir="${JHUB_BUNDLE_DIR:-/var/lib/jhub/bundle}"
  is_abs_path "$dir" || die "JHUB_BUNDLE_DIR must be an absolute path, got '$dir'"
  case "$dir" in
    /var/lib/jhub/?*) ;;
    *) die "JHUB_BUNDLE_DIR must be under /var/lib/jhub, got '$dir'" ;;
  esac
  ensure_absent "$(rootp "$dir")"
  if [ "$JHUB_CHANGED" = 1 ]; then
    log "removed the uploaded bundle in $dir"
  else
    log "no uploaded bundle in $dir, nothing to remove"
  fi
}

main "$@"
