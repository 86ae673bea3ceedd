#!/usr/bin/env bash
# uninstall.sh: remove MicroK8s and what jhub put on this host. Runs only when the config opts in.
#
# Env:
#   JHUB_PURGE              optional, 0 | 1 (default 0); 1 removes MicroK8s with --purge (no snapshot of
#                           its data is kept)
#   JHUB_UNINSTALL_TIMEOUT  optional, seconds (default 900)
# stdin: not read. stdout: nothing.
# Also removes /var/lib/jhub (state and bundle), /etc/sysctl.d/90-jhub.conf,
# /etc/modules-load.d/jhub.conf and jhub's /etc/hosts blocks, and un-comments the swap lines prepare.sh
# commented out (swap comes back at the next boot or with `swapon -a`). Running it again is a no-op.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

SWAP_MARK="#jhub-swapoff# "

remove_microk8s() {
  local purge=()
  [ "$JHUB_PURGE" = 0 ] || purge=(--purge)
  if ! mk8s_installed; then
    log "microk8s is not installed, skipping"
    return 0
  fi
  snapc_t "$JHUB_UNINSTALL_TIMEOUT" remove microk8s "${purge[@]}" >&2 ||
    die "snap remove microk8s failed or took over ${JHUB_UNINSTALL_TIMEOUT}s on $(uname -n)"
  log "removed microk8s${purge[*]:+ (purged)}"
}

remove_hosts_blocks() {
  local hosts name
  hosts="$(rootp /etc/hosts)"
  [ -f "$hosts" ] || return 0
  while IFS= read -r name; do
    ensure_block "$hosts" "$name" </dev/null
    log "/etc/hosts: removed the $name block"
  done < <(awk '/^# BEGIN jhub(-node [^ ]+)? \(managed by jhub/ { print $3 ($3 == "jhub-node" ? " " $4 : "") }' "$hosts")
}

restore_swap() {
  local fstab
  fstab="$(rootp /etc/fstab)"
  [ -f "$fstab" ] || return 0
  awk -v m="$SWAP_MARK" 'index($0, m) == 1 { print substr($0, length(m) + 1); next } { print }' "$fstab" |
    ensure_file "$fstab" "$(file_mode "$fstab" 644)"
  [ "$JHUB_CHANGED" = 0 ] || log "/etc/fstab: swap entries restored (active after a reboot or 'swapon -a')"
}

remove_path() {
  ensure_absent "$(rootp "$1")"
  if [ "$JHUB_CHANGED" = 1 ]; then log "removed $1"; fi
}

main() {
  require_01 JHUB_PURGE
  require_uint JHUB_UNINSTALL_TIMEOUT 900
  remove_microk8s
  remove_hosts_blocks
  restore_swap
  remove_path /etc/sysctl.d/90-jhub.conf
  remove_path /etc/modules-load.d/jhub.conf
  remove_path /var/lib/jhub
}

main "$@"
