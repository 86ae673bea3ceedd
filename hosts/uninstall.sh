#!/usr/bin/env bash
# uninstall.sh: undo what jhub did on this host, and remove the MicroK8s snap jhub installed unless
# asked to keep it. The components run it on every node removal and on `pulumi destroy`.
#
# Env:
#   JHUB_KEEP_MICROK8S      optional, 0 | 1 (default 0); 1 keeps the MicroK8s snap and its data, and
#                           undoes only jhub's host changes
#   JHUB_PURGE              optional, 0 | 1 (default 0); when MicroK8s is removed, 1 removes it with
#                           --purge (no snapshot of its data is kept)
#   JHUB_UNINSTALL_TIMEOUT  optional, seconds (default 900)
# stdin: not read. stdout: nothing.
# MicroK8s is removed only when /var/lib/jhub/microk8s.installed says jhub installed it: an adopted
# MicroK8s (installed outside jhub), or one jhub has no record of, stays, with a log line.
# jhub's host changes: its /etc/hosts blocks, /etc/sysctl.d/90-jhub.conf, /etc/modules-load.d/jhub.conf,
# the swap lines prepare.sh commented out in /etc/fstab (swap comes back at the next boot or with
# `swapon -a`), and /var/lib/jhub (state, the uploaded bundle and the uploaded scripts, this one
# included: bash keeps reading a script that is removed while it runs). They are undone when MicroK8s
# is removed or is not there. While a MicroK8s stays installed (JHUB_KEEP_MICROK8S=1, adopted, or
# unknown to jhub) it keeps running on them: the host settings stay, and of /var/lib/jhub only the
# uploaded bundle and scripts go, so jhub's record of that MicroK8s (microk8s.installed with its origin,
# ready-once, resets) is still right at the next `pulumi up`.
# What jhub wrote inside MicroK8s's own configuration (kubelet --node-ip, registry mirrors, the
# Calico setting) goes with MicroK8s, or stays with a kept one. Running it again is a no-op.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

SWAP_MARK="#jhub-swapoff# "

remove_microk8s() {
  local purge=() origin
  [ "$JHUB_PURGE" = 0 ] || purge=(--purge)
  if ! mk8s_installed; then
    log "microk8s is not installed, skipping"
    return 0
  fi
  if [ "$JHUB_KEEP_MICROK8S" = 1 ]; then
    log "JHUB_KEEP_MICROK8S=1: keeping microk8s rev $SNAP_REV and its data"
    return 0
  fi
  origin="$(install_origin)"
  case "$origin" in
  jhub) ;;
  adopted)
    log "microk8s rev $SNAP_REV was installed outside jhub (adopted), so jhub leaves it installed; remove it yourself if you mean to (sudo snap remove microk8s)"
    return 0
    ;;
  *)
    log "jhub has no record of installing microk8s rev $SNAP_REV (/var/lib/jhub/microk8s.installed), so it leaves it installed"
    return 0
    ;;
  esac
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
  require_01 JHUB_KEEP_MICROK8S
  require_01 JHUB_PURGE
  require_uint JHUB_UNINSTALL_TIMEOUT 900
  remove_microk8s
  if mk8s_installed; then
    log "microk8s stays installed: keeping swap off, the modules, the sysctls and the /etc/hosts blocks it runs on, and jhub's record of it in /var/lib/jhub"
    remove_path /var/lib/jhub/bundle
    # last: this script itself may run from /var/lib/jhub/scripts/<sha>/
    remove_path /var/lib/jhub/scripts
    log "done: the bundle and the scripts are gone from $(uname -n); its MicroK8s keeps running"
    return 0
  fi
  remove_hosts_blocks
  restore_swap
  remove_path /etc/sysctl.d/90-jhub.conf
  remove_path /etc/modules-load.d/jhub.conf
  # last: this script itself may run from /var/lib/jhub/scripts/<sha>/
  remove_path /var/lib/jhub
  log "done: jhub's changes to $(uname -n) are undone"
}

main "$@"
