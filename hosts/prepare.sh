#!/usr/bin/env bash
# prepare.sh: host settings Kubernetes needs, all persistent: swap off, the overlay and br_netfilter
# modules, sysctls, /etc/hosts entries so every node name resolves, and the bundle directory.
#
# Env:
#   JHUB_NODE_NAME     required; this node's name in jhub:nodes. When it is not the host name (lower-cased,
#                      an FQDN whole), install.sh gives it to the kubelet (--hostname-override).
#   JHUB_HOSTS         optional; newline-separated "address name" lines for the jhub block of
#                      /etc/hosts (the block is replaced as a whole; other lines stay). Empty: no block.
#   JHUB_BUNDLE_DIR    optional, default /var/lib/jhub/bundle; where the admin machine uploads files.
#   JHUB_BUNDLE_OWNER  optional; user that uploads files there (owns the directory).
# stdin: not read. stdout: nothing.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

MODULES=(overlay br_netfilter)
SYSCTLS=(
  "net.bridge.bridge-nf-call-iptables = 1"
  "net.bridge.bridge-nf-call-ip6tables = 1"
  "net.ipv4.ip_forward = 1"
  "fs.inotify.max_user_instances = 8192"
  "fs.inotify.max_user_watches = 1048576"
)
SWAP_MARK="#jhub-swapoff# "

validate() {
  local addr name line n=0
  require_env JHUB_NODE_NAME "this node's name from jhub:nodes"
  is_node_name "$JHUB_NODE_NAME" || die "JHUB_NODE_NAME '$JHUB_NODE_NAME' is not a valid node name (lowercase letters, digits, '-' and '.')"
  JHUB_BUNDLE_DIR="${JHUB_BUNDLE_DIR:-/var/lib/jhub/bundle}"
  is_abs_path "$JHUB_BUNDLE_DIR" || die "JHUB_BUNDLE_DIR must be an absolute path, got '$JHUB_BUNDLE_DIR'"
  if [ -n "${JHUB_BUNDLE_OWNER:-}" ]; then
    id -u -- "$JHUB_BUNDLE_OWNER" >/dev/null 2>&1 || die "JHUB_BUNDLE_OWNER '$JHUB_BUNDLE_OWNER' is not a user on $(uname -n)"
  fi
  while IFS= read -r line; do
    n=$((n + 1))
    [ -n "${line// /}" ] || continue
    read -r addr name _ <<<"$line"
    if ! is_ip "$addr" || ! is_hostname "${name:-}"; then
      die "JHUB_HOSTS line $n must be 'address name', got '$line'"
    fi
  done <<<"${JHUB_HOSTS:-}"
}

# The kubelet registers the node under the lower-cased host name unless told another name; labels,
# drain and removal aim at JHUB_NODE_NAME, so install.sh tells the kubelet that name when they differ.
report_node_name() {
  local host
  host="$(host_node_name)"
  if [ "$host" = "$JHUB_NODE_NAME" ]; then
    log "host name $(uname -n) is the node name $JHUB_NODE_NAME"
  else
    log "host name $(uname -n) is not the node name $JHUB_NODE_NAME: install.sh sets the kubelet's --hostname-override=$JHUB_NODE_NAME"
  fi
}

ensure_swap_off() {
  local fstab
  fstab="$(rootp /etc/fstab)"
  if [ -f "$fstab" ]; then
    # comment out active swap entries, marked so uninstall.sh can restore them
    awk -v m="$SWAP_MARK" '$0 !~ /^[[:space:]]*#/ && $3 == "swap" { print m $0; next } { print }' "$fstab" |
      ensure_file "$fstab" "$(file_mode "$fstab" 644)"
    if [ "$JHUB_CHANGED" = 1 ]; then log "commented out swap entries in /etc/fstab"; else log "no active swap entry in /etc/fstab"; fi
  fi
  if ! live; then
    log "JHUB_ROOT is set: skipping swapoff"
  elif [ "$(wc -l </proc/swaps)" -gt 1 ]; then
    swapoff -a
    log "swap turned off (swapoff -a)"
  else
    log "swap already off"
  fi
}

ensure_modules() {
  local m
  {
    printf '# managed by jhub: needed by containerd (overlay) and Kubernetes networking (br_netfilter)\n'
    printf '%s\n' "${MODULES[@]}"
  } | ensure_file "$(rootp /etc/modules-load.d/jhub.conf)" 644
  if [ "$JHUB_CHANGED" = 1 ]; then log "wrote /etc/modules-load.d/jhub.conf"; else log "/etc/modules-load.d/jhub.conf already up to date"; fi
  for m in "${MODULES[@]}"; do
    if ! live; then
      log "JHUB_ROOT is set: skipping modprobe $m"
    elif [ -d "/sys/module/$m" ]; then
      log "module $m already loaded"
    else
      modprobe "$m"
      log "loaded module $m"
    fi
  done
}

ensure_sysctls() {
  local conf kv key want have stale=0
  conf="$(rootp /etc/sysctl.d/90-jhub.conf)"
  {
    printf '# managed by jhub: Kubernetes networking and limits for many containers\n'
    printf '%s\n' "${SYSCTLS[@]}"
  } | ensure_file "$conf" 644
  if [ "$JHUB_CHANGED" = 1 ]; then log "wrote /etc/sysctl.d/90-jhub.conf"; else log "/etc/sysctl.d/90-jhub.conf already up to date"; fi
  if ! live; then
    log "JHUB_ROOT is set: skipping sysctl"
    return 0
  fi
  for kv in "${SYSCTLS[@]}"; do
    key="${kv%% =*}" want="${kv##*= }"
    have="$(cat "/proc/sys/${key//.//}" 2>/dev/null || true)"
    [ "$have" = "$want" ] || stale=1
  done
  if [ "$stale" = 1 ]; then
    sysctl -q -p "$conf"
    log "applied /etc/sysctl.d/90-jhub.conf"
  else
    log "sysctl values already applied"
  fi
}

ensure_hosts_block() {
  local addr name line lines=""
  while IFS= read -r line; do
    [ -n "${line// /}" ] || continue
    read -r addr name _ <<<"$line"
    lines+="$addr $name"$'\n'
  done <<<"${JHUB_HOSTS:-}"
  printf '%s' "$lines" | ensure_block "$(rootp /etc/hosts)" jhub
  if [ "$JHUB_CHANGED" = 1 ]; then log "updated the jhub block in /etc/hosts"; else log "jhub block in /etc/hosts already up to date"; fi
}

ensure_bundle_dir() {
  local dir owner group
  dir="$(rootp "$JHUB_BUNDLE_DIR")"
  mkdir -p -- "$(state_dir)"
  if [ -d "$dir" ]; then log "bundle directory $JHUB_BUNDLE_DIR exists"; else
    mkdir -p -- "$dir"
    log "created bundle directory $JHUB_BUNDLE_DIR"
  fi
  [ "$(stat -c %a "$dir")" = 755 ] || chmod 755 "$dir"
  [ -n "${JHUB_BUNDLE_OWNER:-}" ] || return 0
  owner="$(id -u -- "$JHUB_BUNDLE_OWNER")" group="$(id -g -- "$JHUB_BUNDLE_OWNER")"
  if [ "$(stat -c %u:%g "$dir")" = "$owner:$group" ]; then
    log "bundle directory already owned by $JHUB_BUNDLE_OWNER"
  else
    chown "$owner:$group" "$dir"
    log "bundle directory now owned by $JHUB_BUNDLE_OWNER"
  fi
}

main() {
  validate
  report_node_name
  ensure_hosts_block
  ensure_swap_off
  ensure_modules
  ensure_sysctls
  ensure_bundle_dir
}

main "$@"
