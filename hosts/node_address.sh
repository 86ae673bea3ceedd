#!/usr/bin/env bash
# node_address.sh: pick this node's address on the cluster network and make the kubelet use it
# (--node-ip), so Calico (IP_AUTODETECTION_METHOD=kubernetes-internal-ip) and the API server use the
# same network. Hosts with InfiniBand or several NICs need this: the default route is often the wrong one.
#
# Env (first that applies wins):
#   JHUB_ADDRESS                optional; explicit address (must be assigned on this host)
#   JHUB_INTERFACE              optional; take the first global IPv4 address of this interface (ib0, enp1s0f1)
#   JHUB_CONTROL_PLANE_ADDRESS  required unless JHUB_ADDRESS is set; the source address of the route
#                               to it is used (on the control plane itself: its own address)
# stdin: not read.
# stdout: the address, one line.
# Writes --node-ip=<address> into /var/snap/microk8s/current/args/kubelet (replacing any earlier one) and
# restarts kubelite only when that changed.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

validate() {
  if [ -n "${JHUB_ADDRESS:-}" ]; then
    is_ip "$JHUB_ADDRESS" || die "JHUB_ADDRESS must be an IP address, got '$JHUB_ADDRESS'"
  elif [ -n "${JHUB_INTERFACE:-}" ]; then
    [[ "$JHUB_INTERFACE" =~ ^[A-Za-z0-9_.:@-]{1,15}$ ]] || die "JHUB_INTERFACE must be an interface name, got '$JHUB_INTERFACE'"
  else
    require_env JHUB_CONTROL_PLANE_ADDRESS "the control plane's address (or set JHUB_ADDRESS or JHUB_INTERFACE)"
    is_ip "$JHUB_CONTROL_PLANE_ADDRESS" || die "JHUB_CONTROL_PLANE_ADDRESS must be an IP address, got '$JHUB_CONTROL_PLANE_ADDRESS'"
  fi
}

local_addresses() { ip -o addr show 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4 }'; }

pick_address() {
  local addr addrs
  if [ -n "${JHUB_ADDRESS:-}" ]; then
    addrs="$(local_addresses)"
    grep -qxF -- "$JHUB_ADDRESS" <<<"$addrs" ||
      die "JHUB_ADDRESS $JHUB_ADDRESS is not assigned on $(uname -n) (it has: $(grep -v -e '^127\.' -e '^::1$' <<<"$addrs" | paste -sd ' '))"
    ADDRESS="$JHUB_ADDRESS" HOW="explicit address"
  elif [ -n "${JHUB_INTERFACE:-}" ]; then
    ip link show dev "$JHUB_INTERFACE" >/dev/null 2>&1 ||
      die "interface $JHUB_INTERFACE does not exist on $(uname -n) (it has: $(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | paste -sd ' '))"
    addr="$(ip -4 -o addr show dev "$JHUB_INTERFACE" scope global | awk '{ sub(/\/.*/, "", $4); print $4; exit }')"
    [ -n "$addr" ] || die "interface $JHUB_INTERFACE on $(uname -n) has no global IPv4 address"
    ADDRESS="$addr" HOW="interface $JHUB_INTERFACE"
  else
    # the kernel's choice of source address towards the control plane; no packet is sent
    addr="$(ip -o route get "$JHUB_CONTROL_PLANE_ADDRESS" 2>/dev/null |
      awk '{ for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit } }')" || true
    [ -n "$addr" ] || die "no route from $(uname -n) to the control plane $JHUB_CONTROL_PLANE_ADDRESS; set interface or address on this jhub:nodes entry"
    ADDRESS="$addr" HOW="route to $JHUB_CONTROL_PLANE_ADDRESS"
  fi
}

ensure_node_ip() {
  local args
  args="$(mk8s_data /args/kubelet)"
  [ -f "$args" ] || die "MicroK8s is not installed on $(uname -n) ($(unrootp "$args") is missing); run install first"
  set_kubelet_node_ip "$ADDRESS"
  if [ "$JHUB_CHANGED" = 1 ]; then
    snapc restart microk8s.daemon-kubelite >/dev/null
    log "kubelet --node-ip set to $ADDRESS ($HOW); restarted kubelite"
  else
    log "kubelet --node-ip already $ADDRESS ($HOW), skipping"
  fi
}

main() {
  validate
  pick_address
  ensure_node_ip
  printf '%s\n' "$ADDRESS"
}

main "$@"
