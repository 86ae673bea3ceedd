#!/usr/bin/env bash
# drain.sh drain|uncordon (control plane): take a node out of scheduling before it goes, or put it back.
#
# Env:
#   JHUB_NODE_NAME      required; the node
#   JHUB_DRAIN_TIMEOUT  optional, seconds (default 300) the drain may take
# stdin: not read. stdout: nothing.
# drain: cordon (when schedulable), then evict its pods: DaemonSet pods stay, emptyDir data is deleted,
#   bare pods (no controller, e.g. a user's stray pod) are deleted too. Bounded by the timeout; a drain
#   that does not finish in time is an error.
#   A node whose Ready condition is not True (a dead or unreachable server) cannot evict anything: it
#   is cordoned, its pods are force-deleted (--force --grace-period=0, without waiting), a warning says
#   so, and the script exits 0, so that the dead node can still be removed.
# uncordon: make the node schedulable when it is not.
# A node the cluster does not know is a no-op with a log line.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

main() {
  local action="${1:-}" out unschedulable ready
  case "$action" in
  drain | uncordon) ;;
  *) die "usage: drain.sh drain|uncordon (got '$action')" ;;
  esac
  require_env JHUB_NODE_NAME "the node to $action"
  is_node_name "$JHUB_NODE_NAME" || die "JHUB_NODE_NAME '$JHUB_NODE_NAME' is not a valid node name"
  require_uint JHUB_DRAIN_TIMEOUT 300

  if ! out="$(kctl get node "$JHUB_NODE_NAME" \
    -o 'jsonpath={.spec.unschedulable}{"|"}{.status.conditions[?(@.type=="Ready")].status}' 2>&1)"; then
    if [[ "$out" == *NotFound* || "$out" == *"not found"* ]]; then
      log "node $JHUB_NODE_NAME is not in the cluster, nothing to $action"
      return 0
    fi
    die "cannot ask the cluster about node $JHUB_NODE_NAME: $out"
  fi
  unschedulable="${out%%|*}" ready="${out#*|}"

  if [ "$action" = uncordon ]; then
    if [ "$unschedulable" = true ]; then
      kctl uncordon "$JHUB_NODE_NAME" >&2
      log "node $JHUB_NODE_NAME is schedulable again"
    else
      log "node $JHUB_NODE_NAME already schedulable, skipping"
    fi
    return 0
  fi

  if [ "$unschedulable" = true ]; then
    log "node $JHUB_NODE_NAME already cordoned"
  else
    kctl cordon "$JHUB_NODE_NAME" >&2
    log "cordoned node $JHUB_NODE_NAME"
  fi
  if [ "$ready" != True ]; then
    remove_pods_of_dead_node "${ready:-missing}"
    return 0
  fi
  log "draining node $JHUB_NODE_NAME (up to ${JHUB_DRAIN_TIMEOUT}s)"
  mk8s_t $((JHUB_DRAIN_TIMEOUT + 30)) kubectl drain "$JHUB_NODE_NAME" --ignore-daemonsets \
    --delete-emptydir-data --force "--timeout=${JHUB_DRAIN_TIMEOUT}s" >&2 ||
    die "draining $JHUB_NODE_NAME did not finish within ${JHUB_DRAIN_TIMEOUT}s (a PodDisruptionBudget or a stuck pod?); see 'microk8s kubectl get pods -A -o wide --field-selector spec.nodeName=$JHUB_NODE_NAME', or raise the drain timeout"
  log "drained node $JHUB_NODE_NAME"
}

# remove_pods_of_dead_node READY: a node that is not Ready cannot evict its pods (its kubelet does not
# answer): delete them from the API at once, so their controllers start them elsewhere
remove_pods_of_dead_node() {
  local out
  warn "node $JHUB_NODE_NAME is not Ready (Ready condition: $1), so its pods cannot be evicted; force-deleting them without waiting. Their controllers start them on other nodes; what they kept on that node (emptyDir, hostPath) is not moved"
  if out="$(mk8s_t $((JHUB_DRAIN_TIMEOUT + 30)) kubectl delete pods --all-namespaces \
    --field-selector "spec.nodeName=$JHUB_NODE_NAME" --force --grace-period=0 --wait=false 2>&1)"; then
    log "force-deleted $(grep -c ' force deleted$' <<<"$out" || true) pod(s) of node $JHUB_NODE_NAME"
  else
    warn "force-deleting the pods of node $JHUB_NODE_NAME failed ($(tail -n 1 <<<"$out")); removing the node lets Kubernetes collect them"
  fi
}

main "$@"
