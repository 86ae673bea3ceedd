#!/usr/bin/env bash
# ready.sh (every node): wait until MicroK8s is ready, after install.sh, node_address.sh and images.sh
# or registry.sh. A node is Ready only once Calico runs, so on an air-gapped node this can succeed
# only after the Calico and pause images are in containerd (imported, or pulled through a mirror).
#
# Env:
#   JHUB_WAIT_READY_TIMEOUT  optional, seconds (default 600)
#   JHUB_NODE_NAME           optional; names the node in messages (default: host name)
# stdin: not read. stdout: nothing.
# Runs `microk8s status --wait-ready --timeout N --format short` and reads its answer (it exits 0 even
# when it gave up waiting). On a worker that joined a cluster (microk8s status only answers on the
# control plane) it waits for kubelite instead.
# Ready: /var/lib/jhub/ready-once is written the first time (a node that was ready once is never
# purged by install.sh) and /var/lib/jhub/not-ready is removed.
# Not ready: prints what it can find out (containerd, kubelite, images the node needs that containerd
# lacks, kube-system pods that do not run), records /var/lib/jhub/not-ready and exits 1.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# one line, full name: docker.io/calico/node:v3.28.1 (containerd lists images by their full names)
full_ref() {
  local ref="$1" first="${1%%/*}"
  if [[ "$ref" != */* ]]; then
    ref="docker.io/library/$ref"
  elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then
    ref="docker.io/$ref"
  fi
  printf '%s\n' "$ref"
}

# the images a node needs before it can be Ready: containerd's sandbox (pause) image and the images
# of MicroK8s's CNI manifest (Calico), as this node's own MicroK8s names them
required_images() {
  local tmpl cni ref
  tmpl="$(mk8s_data /args/containerd-template.toml)"
  cni="$(mk8s_data /args/cni-network/cni.yaml)"
  {
    [ ! -f "$tmpl" ] || awk -F'"' '$1 ~ /^[ \t]*sandbox_image[ \t]*=[ \t]*$/ { print $2 }' "$tmpl"
    [ ! -f "$cni" ] || awk '$1 == "image:" || ($1 == "-" && $2 == "image:") { v = $NF; gsub(/["\047]/, "", v); print v }' "$cni"
  } | while IFS= read -r ref; do [ -z "$ref" ] || full_ref "$ref"; done | sort -u
}

# mirror_for REGISTRY: the mirror registry.sh configured for REGISTRY (empty when none)
mirror_for() {
  local toml
  toml="$(mk8s_data "/args/certs.d/$1/hosts.toml")"
  [ -f "$toml" ] && [ "$(head -n 1 "$toml")" = "$REGISTRY_MARK" ] || return 0
  awk -F'"' '/^\[host\."/ { print $2; exit }' "$toml"
}

report_missing_images() {
  local have ref registry mirror
  if ! have="$(mk8s_t 60 ctr --namespace k8s.io images ls -q 2>/dev/null)"; then
    warn "cannot list containerd's images"
    return 0
  fi
  while IFS= read -r ref; do
    [ -n "$ref" ] || continue
    ! grep -qxF -- "$ref" <<<"$have" || continue
    registry="${ref%%/*}"
    mirror="$(mirror_for "$registry")"
    if [ -n "$mirror" ]; then
      warn "image $ref is not on this node and was not pulled through the registry mirror $mirror (configured for $registry): check that the mirror serves it"
    else
      warn "image $ref is not on this node: check the offline bundle / registry mirror (list it in offline-images so images.sh imports it, or set jhub:offline.registryMirror)"
    fi
    PROBLEMS=$((PROBLEMS + 1))
  done < <(required_images)
}

# kube-system pods that are not running, with kubectl's STATUS column (ErrImagePull, Init:0/2, ...)
report_pods() {
  local out bad
  if ! out="$(mk8s_t 60 kubectl -n kube-system get pods --no-headers 2>&1)"; then
    warn "the API server does not answer, so the kube-system pods cannot be listed: $(tail -n 1 <<<"$out")"
    PROBLEMS=$((PROBLEMS + 1))
    return 0
  fi
  if [ -z "$out" ] || [[ "$out" == "No resources found"* ]]; then
    warn "there are no kube-system pods yet (the Calico manifest has not been applied; see 'sudo microk8s inspect')"
    PROBLEMS=$((PROBLEMS + 1))
    return 0
  fi
  bad="$(awk '{ split($2, r, "/") }
    $3 != "Completed" && ($3 != "Running" || r[1] != r[2]) { printf "%s%s (%s, ready %s)", sep, $1, $3, $2; sep = ", " }' <<<"$out")"
  if [ -n "$bad" ]; then
    warn "kube-system pods not running: $bad"
    PROBLEMS=$((PROBLEMS + 1))
  fi
}

diagnose() {
  PROBLEMS=0
  if ! mk8s_t 30 ctr version >/dev/null 2>&1; then
    warn "containerd does not answer ('microk8s ctr version' fails); see 'sudo snap logs -n 50 microk8s.daemon-containerd'"
    PROBLEMS=$((PROBLEMS + 1))
  fi
  if ! snap_service_active microk8s.daemon-kubelite; then
    warn "kubelite is not running; see 'sudo snap logs -n 50 microk8s.daemon-kubelite'"
    PROBLEMS=$((PROBLEMS + 1))
  fi
  report_missing_images
  report_pods
  [ "$PROBLEMS" -gt 0 ] || warn "no cause found here; see 'sudo microk8s inspect' and 'sudo microk8s kubectl describe nodes'"
}

mark_ready() {
  snap_info microk8s || true
  if [ ! -f "$(ready_once_file)" ]; then
    printf 'revision=%s\nfirst-ready=%s\n' "$SNAP_REV" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" | ensure_file "$(ready_once_file)" 644
    log "recorded in /var/lib/jhub/ready-once: this MicroK8s has been ready (jhub never purges it for being slow later)"
  fi
  ensure_absent "$(not_ready_file)"
}

fail() {
  local why="$1" node
  node="$(node_label)"
  mark_not_ready "ready.sh: $why"
  if [ -f "$(ready_once_file)" ]; then
    die "$why. MicroK8s on $node was ready before, so jhub leaves it as it is: fix what is reported above (sudo microk8s inspect) and run pulumi up again"
  elif [ "$(install_origin)" = jhub ]; then
    die "$why; it has not been ready since jhub installed it. Fix what is reported above and run pulumi up again; if it stays broken, $(reset_hint) to let jhub remove MicroK8s with its data and install it afresh"
  fi
  die "$why. Fix what is reported above (sudo microk8s inspect) and run pulumi up again"
}

main() {
  local out
  require_uint JHUB_WAIT_READY_TIMEOUT 600
  mk8s_installed || die "microk8s is not installed on $(node_label); install.sh runs before ready.sh"

  if mk8s_clustered_worker; then
    # `microk8s status` answers only on the control plane; the control plane sees this node's state
    log "this node is a worker of a cluster; waiting up to ${JHUB_WAIT_READY_TIMEOUT}s for its kubelite"
    if ! wait_for "$JHUB_WAIT_READY_TIMEOUT" snap_service_active microk8s.daemon-kubelite; then
      warn "kubelite is not running; see 'sudo snap logs -n 50 microk8s.daemon-kubelite'"
      fail "kubelite on worker $(node_label) is not running after ${JHUB_WAIT_READY_TIMEOUT}s"
    fi
    log "kubelite is running (the control plane reports this worker's readiness)"
    mark_ready
    return 0
  fi

  log "waiting up to ${JHUB_WAIT_READY_TIMEOUT}s for microk8s to be ready"
  out="$(mk8s_t $((JHUB_WAIT_READY_TIMEOUT + 60)) status --wait-ready --timeout "$JHUB_WAIT_READY_TIMEOUT" --format short 2>&1)" || true
  if [ "$(head -n 1 <<<"$out")" = "microk8s is running" ]; then
    log "microk8s is ready"
    mark_ready
    return 0
  fi
  warn "microk8s status says: $(head -n 1 <<<"$out")"
  diagnose
  fail "microk8s on $(node_label) is not ready after ${JHUB_WAIT_READY_TIMEOUT}s"
}

main "$@"
