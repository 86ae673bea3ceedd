#!/usr/bin/env bash
# node_address.sh: pick this node's address on the cluster network and make the kubelet use it
# (--node-ip), so Calico (IP_AUTODETECTION_METHOD=kubernetes-internal-ip) and the API server use the
# same network. Hosts with InfiniBand or several NICs need this: the default route is often the wrong one.
#
# Env (first that applies wins):
#   JHUB_ADDRESS                optional; explicit address (must be assigned on this host)
#   JHUB_INTERFACE              optional; take the first global IPv4 address of this interface (ib0, enp1s0f1)
#   JHUB_CONTROL_PLANE_ADDRESS  optional; the source address of the route to it is used (on the control
#                               plane itself: its own address). Empty, loopback, unspecified or link-local:
#                               the source address of the default route, else (no default route) the first
#                               global IPv4 address of this host.
# A loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16, fe80::/10) or unspecified (0.0.0.0, ::)
# address is never picked, and JHUB_ADDRESS set to one is an error.
# stdin: not read.
# stdout: the address, one line.
# Writes --node-ip=<address> into /var/snap/microk8s/current/args/kubelet (replacing any earlier one) and
# restarts kubelite only when that changed. No packet is sent (`ip route get` only asks the kernel).
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# unusable_kind ADDRESS: loopback, link-local or unspecified; nothing for an address other nodes can reach
unusable_kind() {
  local a="${1,,}"
  case "$a" in
  127.*) printf loopback ;;
  169.254.*) printf link-local ;;
  0.*) printf unspecified ;;
  fe8?:* | fe9?:* | fea?:* | feb?:*) printf link-local ;;
  *)
    # IPv6 written with zeros and "::": all zero is unspecified, all zero but a last 1 is loopback
    if [[ "$a" == *:* && "$a" =~ ^[0:]+$ ]]; then
      printf unspecified
    elif [[ "$a" == *:* && "$a" =~ ^[0:]*:0*1$ ]]; then
      printf loopback
    fi
    ;;
  esac
}
usable() { is_ip "$1" && [ -z "$(unusable_kind "$1")" ]; }

validate() {
  local kind
  if [ -n "${JHUB_ADDRESS:-}" ]; then
    is_ip "$JHUB_ADDRESS" || die "JHUB_ADDRESS must be an IP address, got '$JHUB_ADDRESS'"
    kind="$(unusable_kind "$JHUB_ADDRESS")"
    [ -z "$kind" ] ||
      die "JHUB_ADDRESS $JHUB_ADDRESS is a $kind address, which other nodes cannot reach; set address on this jhub:nodes entry to the node's address on the cluster network"
  elif [ -n "${JHUB_INTERFACE:-}" ]; then
    [[ "$JHUB_INTERFACE" =~ ^[A-Za-z0-9_.:@-]{1,15}$ ]] || die "JHUB_INTERFACE must be an interface name, got '$JHUB_INTERFACE'"
  fi
  if [ -n "${JHUB_CONTROL_PLANE_ADDRESS:-}" ]; then
    is_ip "$JHUB_CONTROL_PLANE_ADDRESS" || die "JHUB_CONTROL_PLANE_ADDRESS must be an IP address, got '$JHUB_CONTROL_PLANE_ADDRESS'"
  fi
}

local_addresses() { ip -o addr show 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4 }'; }
# first_usable: the first usable address of the lines on stdin
first_usable() {
  local a
  while IFS= read -r a; do
    if usable "$a"; then
      printf '%s\n' "$a"
      return 0
    fi
  done
}
# global_ipv4 [DEV]: global-scope IPv4 addresses (of DEV), in the kernel's order
global_ipv4() { ip -4 -o addr show ${1:+dev "$1"} scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4 }'; }
route_src() { ip -o route get "$1" 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit } }' || true; }

# the source address of the first (preferred) IPv4 default route
default_route_source() {
  local line via dev src
  line="$(ip -o -4 route show default 2>/dev/null | head -n 1)"
  [ -n "$line" ] || return 0
  read -r via dev src < <(awk '{ for (i = 1; i < NF; i++) { if ($i == "via") v = $(i + 1); if ($i == "dev") d = $(i + 1); if ($i == "src") s = $(i + 1) } }
    END { print (v == "" ? "-" : v), (d == "" ? "-" : d), (s == "" ? "-" : s) }' <<<"$line")
  if [ "$src" != - ]; then
    printf '%s\n' "$src"
  elif [ "$via" != - ]; then
    route_src "$via"
  elif [ "$dev" != - ]; then
    global_ipv4 "$dev" | first_usable
  fi
}

pick_address() {
  local addr addrs kind cp="${JHUB_CONTROL_PLANE_ADDRESS:-}"
  if [ -n "${JHUB_ADDRESS:-}" ]; then
    addrs="$(local_addresses)"
    grep -qxF -- "$JHUB_ADDRESS" <<<"$addrs" ||
      die "JHUB_ADDRESS $JHUB_ADDRESS is not assigned on $(uname -n) (it has: $(first_usable_all <<<"$addrs"))"
    ADDRESS="$JHUB_ADDRESS" HOW="explicit address"
    return 0
  fi
  if [ -n "${JHUB_INTERFACE:-}" ]; then
    ip link show dev "$JHUB_INTERFACE" >/dev/null 2>&1 ||
      die "interface $JHUB_INTERFACE does not exist on $(uname -n) (it has: $(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | paste -sd ' '))"
    addr="$(global_ipv4 "$JHUB_INTERFACE" | first_usable)"
    [ -n "$addr" ] || die "interface $JHUB_INTERFACE on $(uname -n) has no global IPv4 address other nodes can reach (it has: $(global_ipv4 "$JHUB_INTERFACE" | paste -sd ' ' | sed 's/^$/none/'))"
    ADDRESS="$addr" HOW="interface $JHUB_INTERFACE"
    return 0
  fi
  kind=""
  [ -z "$cp" ] || kind="$(unusable_kind "$cp")"
  if [ -n "$cp" ] && [ -z "$kind" ]; then
    # the kernel's choice of source address towards the control plane
    addr="$(route_src "$cp")"
    [ -n "$addr" ] || die "no route from $(uname -n) to the control plane $cp; set interface or address on this jhub:nodes entry"
    usable "$addr" || die "the route from $(uname -n) to the control plane $cp uses $addr, a $(unusable_kind "$addr") address; set interface or address on this jhub:nodes entry"
    ADDRESS="$addr" HOW="route to $cp"
    return 0
  fi
  if [ -n "$cp" ]; then
    log "the control plane address $cp is $kind, so it says nothing about this node's network; using the default route"
  fi
  addr="$(default_route_source | first_usable)"
  if [ -n "$addr" ]; then
    ADDRESS="$addr" HOW="default route"
    return 0
  fi
  addr="$(global_ipv4 | first_usable)"
  [ -n "$addr" ] ||
    die "$(uname -n) has no default route and no global IPv4 address other nodes can reach; set interface or address on this jhub:nodes entry"
  ADDRESS="$addr" HOW="first global address; no default route"
}

# the usable addresses among the lines on stdin, space-separated (for messages)
first_usable_all() {
  local a out=()
  while IFS= read -r a; do if usable "$a"; then out+=("$a"); fi; done
  printf '%s' "${out[*]:-none}"
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
