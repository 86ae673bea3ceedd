#!/usr/bin/env bash
# addons.sh (control plane): enable the configured MicroK8s addons, point CoreDNS at the site's DNS
# servers, and make Calico take each node's kubelet --node-ip as its address.
#
# Env:
#   JHUB_ADDONS              newline-separated addons, e.g. dns, hostpath-storage, helm3, rbac; an entry may
#                            carry its enable arguments (dns:10.0.0.2,10.0.0.3) or a repository (community/x)
#   JHUB_DNS_SERVERS         optional; comma-separated upstream DNS servers. A plain `dns` entry is
#                            enabled as dns:<servers>; when dns is enabled already (earlier, or with other
#                            servers), CoreDNS's forward line is patched to them. Empty: CoreDNS is left
#                            as it is.
#   JHUB_CALICO_AUTODETECT   optional (default kubernetes-internal-ip); Calico's IP_AUTODETECTION_METHOD
#   JHUB_ADDON_TIMEOUT       optional, seconds per addon and for the API to be ready (default 600)
# stdin: not read. stdout: nothing.
# Only addons that are not enabled are enabled. An addon dropped from the config is reported, never
# disabled. The Calico setting goes into the live DaemonSet and into MicroK8s's
# args/cni-network/cni.yaml (so MicroK8s upgrades keep it), each only when different.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

NAMES=() ARGS=()

validate() {
  local line n=0 name args s servers
  require_uint JHUB_ADDON_TIMEOUT 600
  JHUB_CALICO_AUTODETECT="${JHUB_CALICO_AUTODETECT:-kubernetes-internal-ip}"
  [[ "$JHUB_CALICO_AUTODETECT" =~ ^(first-found|kubernetes-internal-ip|(can-reach|interface|skip-interface|cidr)=[A-Za-z0-9.:/,*|_-]+)$ ]] ||
    die "JHUB_CALICO_AUTODETECT must be a Calico IP_AUTODETECTION_METHOD (kubernetes-internal-ip, can-reach=<ip>, interface=<regex>, cidr=<cidr>...), got '$JHUB_CALICO_AUTODETECT'"
  if [ -n "${JHUB_DNS_SERVERS:-}" ]; then
    IFS=, read -ra servers <<<"$JHUB_DNS_SERVERS"
    for s in "${servers[@]}"; do is_ip "$s" || die "JHUB_DNS_SERVERS: '$s' is not an IP address"; done
  fi
  while IFS= read -r line; do
    n=$((n + 1))
    line="${line// /}"
    [ -n "$line" ] || continue
    name="${line%%:*}" args=""
    [[ "$line" != *:* ]] || args="${line#*:}"
    [[ "$name" =~ ^([a-z0-9-]+/)?[a-z0-9][a-z0-9-]*$ ]] || die "JHUB_ADDONS line $n: '$name' is not an addon name"
    [[ "$args" =~ ^[A-Za-z0-9.,:=/_-]*$ ]] || die "JHUB_ADDONS line $n: arguments '$args' have characters an addon never takes"
    if [ "${name#*/}" = dns ] && [ -z "$args" ] && [ -n "${JHUB_DNS_SERVERS:-}" ]; then args="$JHUB_DNS_SERVERS"; fi
    NAMES+=("$name") ARGS+=("$args")
  done <<<"${JHUB_ADDONS:-}"
}

# ENABLED: enabled addons, one per line, both as "repo/name" and "name"
read_enabled() {
  local status
  # `microk8s status --wait-ready` exits 1 when it gave up (some releases exit 0): its first line tells
  status="$(mk8s_t $((JHUB_ADDON_TIMEOUT + 30)) status --wait-ready --timeout "$JHUB_ADDON_TIMEOUT" --format short 2>/dev/null)" || true
  [ "$(head -n 1 <<<"$status")" = "microk8s is running" ] ||
    die "microk8s on $(uname -n) is not ready after ${JHUB_ADDON_TIMEOUT}s ($(head -n 1 <<<"$status")); ready.sh says why, or run 'sudo microk8s inspect' there"
  ENABLED="$(awk -F': ' '$2 == "enabled" { gsub(/^[ \t]+/, "", $1); print $1; n = split($1, p, "/"); print p[n] }' <<<"$status")"
}
is_enabled() { grep -qxF -- "$1" <<<"$ENABLED"; }

ensure_addons() {
  local i name
  for i in "${!NAMES[@]}"; do
    name="${NAMES[$i]}"
    if is_enabled "$name"; then
      log "addon $name already enabled, skipping"
      continue
    fi
    mk8s_t "$JHUB_ADDON_TIMEOUT" enable "$name${ARGS[$i]:+:${ARGS[$i]}}" >&2 ||
      die "enabling addon $name on $(uname -n) failed or took over ${JHUB_ADDON_TIMEOUT}s"
    log "enabled addon $name${ARGS[$i]:+ (${ARGS[$i]})}"
    JUST_ENABLED+=" ${name#*/} "
  done
}

# report addons jhub enabled earlier that the config no longer lists; never disable them
report_dropped() {
  local f prev name i listed
  f="$(state_dir /addons)"
  prev="$(cat "$f" 2>/dev/null || true)"
  while IFS= read -r name; do
    [ -n "$name" ] || continue
    listed=0
    for i in "${!NAMES[@]}"; do [ "${NAMES[$i]}" != "$name" ] || listed=1; done
    if [ "$listed" = 0 ] && is_enabled "$name"; then
      warn "addon $name is enabled but no longer in jhub:microk8s.addons; jhub leaves it on (disable it by hand with 'microk8s disable $name' if you mean it)"
    fi
  done <<<"$prev"
  # remember every addon jhub asked for that is still enabled
  {
    printf '%s\n' "$prev"
    printf '%s\n' "${NAMES[@]}"
  } | while IFS= read -r name; do
    if [ -n "$name" ] && is_enabled "$name"; then printf '%s\n' "$name"; fi
  done | sort -u | ensure_file "$f" 644
}

# CoreDNS forwards to JHUB_DNS_SERVERS (the dns addon only takes them when it is first enabled)
ensure_dns_servers() {
  local corefile want have new
  if [ -z "${JHUB_DNS_SERVERS:-}" ] || ! is_enabled dns; then return 0; fi
  # enabled just now with the servers as its argument
  if [[ "$JUST_ENABLED" == *" dns "* ]]; then return 0; fi
  corefile="$(kctl -n kube-system get configmap coredns -o 'jsonpath={.data.Corefile}')" ||
    die "cannot read the coredns ConfigMap on $(uname -n)"
  want="${JHUB_DNS_SERVERS//,/ }"
  have="$(awk '$1 == "forward" && $2 == "." { $1 = ""; $2 = ""; sub(/^ +/, ""); sub(/ *\{$/, ""); print; exit }' <<<"$corefile")"
  if [ "$have" = "$want" ]; then
    log "CoreDNS already forwards to $want, skipping"
    return 0
  fi
  new="$(awk -v w="$want" '$1 == "forward" && $2 == "." && !done {
      match($0, /^[ \t]*/); ind = substr($0, 1, RLENGTH); brace = ($NF == "{") ? " {" : ""
      print ind "forward . " w brace; done = 1; next } { print }' <<<"$corefile")"
  kctl -n kube-system patch configmap coredns --type merge -p "{\"data\":{\"Corefile\":$(json_str "$new"$'\n')}}" >/dev/null
  log "CoreDNS now forwards to $want (was: ${have:-none})"
}

ensure_calico_manifest() {
  local cni
  cni="$(mk8s_data /args/cni-network/cni.yaml)"
  if [ ! -f "$cni" ] || ! grep -q 'IP_AUTODETECTION_METHOD' "$cni"; then
    log "no Calico manifest with IP_AUTODETECTION_METHOD in args/cni-network, skipping it"
    return 0
  fi
  # the value line follows the "- name: IP_AUTODETECTION_METHOD" line
  awk -v m="$JHUB_CALICO_AUTODETECT" '
    /name: *IP_AUTODETECTION_METHOD *$/ { print; want = 1; next }
    want && /value:/ { match($0, /^[ \t]*/); print substr($0, 1, RLENGTH) "value: \"" m "\""; want = 0; next }
    { print }' "$cni" | ensure_file "$cni" "$(file_mode "$cni" 660)"
  if [ "$JHUB_CHANGED" = 1 ]; then log "Calico manifest (args/cni-network/cni.yaml) now uses $JHUB_CALICO_AUTODETECT"; else log "Calico manifest already uses $JHUB_CALICO_AUTODETECT"; fi
}

ensure_calico_live() {
  local have err
  if ! have="$(kctl -n kube-system get daemonset calico-node \
    -o 'jsonpath={.spec.template.spec.containers[?(@.name=="calico-node")].env[?(@.name=="IP_AUTODETECTION_METHOD")].value}' 2>&1)"; then
    err="$have"
    [[ "$err" == *NotFound* || "$err" == *"not found"* ]] || die "cannot read the calico-node DaemonSet: $err"
    log "no calico-node DaemonSet (another CNI?), skipping"
    return 0
  fi
  if [ "$have" = "$JHUB_CALICO_AUTODETECT" ]; then
    log "calico-node already uses $JHUB_CALICO_AUTODETECT, skipping"
    return 0
  fi
  kctl -n kube-system set env daemonset/calico-node -c calico-node "IP_AUTODETECTION_METHOD=$JHUB_CALICO_AUTODETECT" >/dev/null
  log "calico-node now uses IP_AUTODETECTION_METHOD=$JHUB_CALICO_AUTODETECT (was: ${have:-unset})"
}

main() {
  validate
  JUST_ENABLED=" "
  read_enabled
  ensure_addons
  [ "$JUST_ENABLED" = " " ] || read_enabled
  report_dropped
  ensure_dns_servers
  ensure_calico_manifest
  ensure_calico_live
}

main "$@"
