#!/usr/bin/env bash
# leave.sh (worker): leave the jhub cluster this node joined; anything else is left alone.
#
# Env:
#   JHUB_CLUSTER_ID     required; the jhub cluster's id
#   JHUB_LEAVE_TIMEOUT  optional, seconds (default 300)
# stdin: not read. stdout: nothing.
# When /var/lib/jhub/cluster-id names this cluster and MicroK8s is clustered: `microk8s leave`, then
# the marker goes. Otherwise a log line and exit 0.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

main() {
  local marker
  require_env JHUB_CLUSTER_ID "the jhub cluster's id"
  [[ "$JHUB_CLUSTER_ID" =~ ^[A-Za-z0-9._-]{1,128}$ ]] || die "JHUB_CLUSTER_ID must be letters, digits, '.', '_' or '-', got '$JHUB_CLUSTER_ID'"
  require_uint JHUB_LEAVE_TIMEOUT 300
  marker="$(marker_cluster_id)"
  if [ "$marker" != "$JHUB_CLUSTER_ID" ]; then
    log "this node is not joined to cluster $JHUB_CLUSTER_ID (jhub marker: ${marker:-none}), nothing to leave"
    return 0
  fi
  if mk8s_installed && mk8s_clustered_worker; then
    mk8s_t "$JHUB_LEAVE_TIMEOUT" leave >&2 || die "microk8s leave failed or took over ${JHUB_LEAVE_TIMEOUT}s on $(uname -n)"
    log "left cluster $JHUB_CLUSTER_ID"
  else
    log "MicroK8s is no longer clustered here; only the jhub marker remained"
  fi
  rm -f -- "$(marker_file)"
  log "removed /var/lib/jhub/cluster-id"
}

main "$@"
