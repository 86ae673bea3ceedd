#!/usr/bin/env bash
# join.sh (worker): join this node to the cluster as a worker, once.
#
# Env:
#   JHUB_CONTROL_PLANE_ADDRESS  required; the control plane's IP address (MicroK8s joins by IP)
#   JHUB_CONTROL_PLANE_FINGERPRINT  required; the control plane's cluster agent fingerprint, as
#                               fingerprint.sh prints it there (12 to 64 hex digits). MicroK8s checks the
#                               certificate on :25000 against it before it sends the token; without it
#                               it would send the token to whoever answers.
#   JHUB_CLUSTER_ID             required; identifies the jhub cluster (letters, digits, . _ -)
#   JHUB_RESET_ID               optional (default empty: no reset). Any other value permits ONE reset on
#                               this host (used ids: /var/lib/jhub/resets): leaving the other MicroK8s
#                               cluster this node belongs to, before joining this one.
#   JHUB_JOIN_TIMEOUT           optional, seconds (default 600) for the join and for kubelite to run
#   JHUB_CLUSTER_AGENT_PORT     optional (default 25000)
#   JHUB_JOIN_RETRY_DELAY       optional, seconds between join attempts (default 10; 3 attempts at most)
#   JHUB_NODE_NAME              optional; names the node in messages (default: host name)
# stdin: line 1 is the cluster join token. It is never logged and reaches no command line except the
#   `microk8s join <cp>:<port>/<token>/<fingerprint> --worker` call.
# stdout: nothing.
# State: /var/lib/jhub/cluster-id holds the cluster id once joined. Together with MicroK8s's own
# clustered state (var/lock/clustered.lock) it makes a rerun a no-op.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

validate() {
  require_env JHUB_CONTROL_PLANE_ADDRESS "the control plane's IP address"
  is_ip "$JHUB_CONTROL_PLANE_ADDRESS" || die "JHUB_CONTROL_PLANE_ADDRESS must be an IP address (MicroK8s joins by IP), got '$JHUB_CONTROL_PLANE_ADDRESS'"
  require_env JHUB_CONTROL_PLANE_FINGERPRINT "the control plane's cluster agent fingerprint (fingerprint.sh prints it there)"
  [[ "$JHUB_CONTROL_PLANE_FINGERPRINT" =~ ^[0-9a-f]{12,64}$ ]] ||
    die "JHUB_CONTROL_PLANE_FINGERPRINT must be 12 to 64 lowercase hex digits (fingerprint.sh on the control plane prints it), got '$JHUB_CONTROL_PLANE_FINGERPRINT'"
  require_env JHUB_CLUSTER_ID "the jhub cluster's id"
  [[ "$JHUB_CLUSTER_ID" =~ ^[A-Za-z0-9._-]{1,128}$ ]] || die "JHUB_CLUSTER_ID must be letters, digits, '.', '_' or '-', got '$JHUB_CLUSTER_ID'"
  check_reset_id
  require_uint JHUB_JOIN_TIMEOUT 600
  require_uint JHUB_CLUSTER_AGENT_PORT 25000
  require_uint JHUB_JOIN_RETRY_DELAY 10
}

# leave_other_cluster WHY: refuse, or (when JHUB_RESET_ID permits a reset) leave the other cluster first
leave_other_cluster() {
  local node
  node="$(node_label)"
  if [ "$RESET_OK" != 1 ]; then
    die "$node already belongs to another MicroK8s cluster ($1). Run 'sudo microk8s leave' on $node, or $(reset_hint), then run pulumi up again"
  fi
  consume_reset "leave the other cluster ($1) to join cluster $JHUB_CLUSTER_ID"
  mk8s_t "$JHUB_JOIN_TIMEOUT" leave >&2 || die "microk8s leave failed on $node"
  rm -f -- "$(marker_file)"
  log "left the other cluster"
}

# a standalone control plane with its own nodes would lose them by joining as a worker
refuse_if_serving_others() {
  local nodes
  nodes="$(mk8s_t 30 kubectl get nodes -o name 2>/dev/null | grep -c . || true)"
  if [ "${nodes:-0}" -gt 1 ]; then
    die "$(node_label) is the control plane of its own MicroK8s cluster with $nodes nodes; joining would abandon them. Remove those nodes there (microk8s remove-node), or remove MicroK8s from $(node_label) (sudo snap remove --purge microk8s) and run pulumi up again"
  fi
}

do_join() {
  local out deadline=$((SECONDS + JHUB_JOIN_TIMEOUT)) try=1 left
  while :; do
    left=$((deadline - SECONDS))
    [ "$left" -gt 0 ] || left=1
    if out="$(mk8s_t "$left" join "$JHUB_CONTROL_PLANE_ADDRESS:$JHUB_CLUSTER_AGENT_PORT/$JHUB_TOKEN_VALUE/$JHUB_CONTROL_PLANE_FINGERPRINT" --worker 2>&1)"; then
      return 0
    fi
    # a join that got far enough to mark the node is done; the retry would be refused
    ! mk8s_clustered_worker || return 0
    if [[ "$out" == *[Ff]ingerprint* || "$out" == *"certificate verify failed"* ]]; then
      die "the server at $JHUB_CONTROL_PLANE_ADDRESS:$JHUB_CLUSTER_AGENT_PORT is not the control plane jhub admitted $(node_label) on (its certificate does not match fingerprint $JHUB_CONTROL_PLANE_FINGERPRINT): $(redact "$out"). Check jhub:nodes (the control plane's address); after 'microk8s refresh-certs' there, run pulumi up --refresh"
    fi
    if [[ "$out" == *[Ii]nvalid\ token* ]]; then
      die "the control plane refused the join token: it is registered by this worker's admit and revoked once its join succeeded (or the worker left the stack). $(reset_hint) (a new reset renews the token through the worker's admit), then run pulumi up again: $(redact "$out")"
    fi
    if [ "$try" -ge 3 ] || [ $((deadline - SECONDS)) -le "$JHUB_JOIN_RETRY_DELAY" ]; then
      die "joining $JHUB_CONTROL_PLANE_ADDRESS:$JHUB_CLUSTER_AGENT_PORT failed after $try tries: $(redact "$out")"
    fi
    log "join attempt $try failed ($(redact "$out" | tail -n 1)); retrying in ${JHUB_JOIN_RETRY_DELAY}s"
    try=$((try + 1))
    sleep "$JHUB_JOIN_RETRY_DELAY"
  done
}

wait_kubelite() {
  wait_for "$JHUB_JOIN_TIMEOUT" snap_service_active microk8s.daemon-kubelite ||
    die "$(node_label) joined cluster $JHUB_CLUSTER_ID, but kubelite is not running after ${JHUB_JOIN_TIMEOUT}s; see 'sudo microk8s inspect' there"
  log "kubelite is running"
}

main() {
  local marker pre_ip pre_name
  local -a kept=()
  validate
  read_token
  mk8s_installed || die "microk8s is not installed on $(node_label); install runs before join"
  marker="$(marker_cluster_id)"

  if mk8s_clustered_worker; then
    if [ "$marker" = "$JHUB_CLUSTER_ID" ]; then
      log "already joined to cluster $JHUB_CLUSTER_ID, skipping"
      wait_kubelite
      return 0
    fi
    leave_other_cluster "jhub cluster id: ${marker:-none}"
  else
    if [ -n "$marker" ]; then
      log "marker says cluster $marker but MicroK8s is not clustered (left by hand?); joining again"
      rm -f -- "$(marker_file)"
    fi
    refuse_if_serving_others
  fi

  # the join rewrites args/kubelet from the control plane's (dropping --hostname-override); keep the
  # --node-ip node_address.sh chose and the node name install.sh set
  pre_ip="$(kubelet_node_ip)"
  pre_name="$(service_arg kubelet --hostname-override)"
  log "joining $JHUB_CONTROL_PLANE_ADDRESS:$JHUB_CLUSTER_AGENT_PORT as a worker"
  do_join
  # recorded at once: a rerun after a later failure must see this cluster, not "another" one
  printf '%s\n' "$JHUB_CLUSTER_ID" | ensure_file "$(marker_file)" 644
  log "joined cluster $JHUB_CLUSTER_ID (recorded in /var/lib/jhub/cluster-id)"

  if [ -n "$pre_ip" ] && [ "$(kubelet_node_ip)" != "$pre_ip" ]; then
    set_kubelet_node_ip "$pre_ip"
    kept+=("--node-ip=$pre_ip")
  fi
  if [ -n "$pre_name" ] && [ "$(service_arg kubelet --hostname-override)" != "$pre_name" ]; then
    set_node_name "$pre_name"
    kept+=("--hostname-override=$pre_name")
  fi
  if [ "${#kept[@]}" -gt 0 ]; then
    snapc restart microk8s.daemon-kubelite >/dev/null
    log "kept kubelet ${kept[*]} after the join; restarted kubelite"
  fi
  wait_kubelite
}

main "$@"
