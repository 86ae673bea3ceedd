#!/usr/bin/env bash
# install.sh: install MicroK8s (from snap files offline, or from the store online), hold its automatic
# refreshes, and wait until it is ready.
#
# Env:
#   JHUB_MODE                 required; air-gapped | online
#   JHUB_CHANNEL              required; e.g. 1.32/stable (online: the channel to track)
#   JHUB_SNAP_DIR             air-gapped: required; directory holding the snap and assertion files
#   JHUB_SNAPS                air-gapped: required; newline-separated "name snapfile assertfile" lines,
#                             base snap(s) first, microk8s last. File names inside JHUB_SNAP_DIR.
#   JHUB_RESET                optional, 0 | 1 (default 0); 1 allows removing (purging) a MicroK8s that
#                             jhub did not install or that never became ready, and installing afresh.
#   JHUB_WAIT_READY_TIMEOUT   optional, seconds (default 600)
#   JHUB_NODE_NAME            optional; names the node in messages (default: host name)
# stdin: not read. stdout: nothing.
# State: /var/lib/jhub/microk8s.installed records what jhub installed (revision, channel, mode).
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

INSTALL_TIMEOUT=1200 # one snap install from a file can take minutes on a slow disk
SNAP_NAMES=() SNAP_FILES=() SNAP_ASSERTS=() SNAP_WANT_REVS=()

validate() {
  local line n=0 name file assert rev dir
  case "${JHUB_MODE:-}" in
  air-gapped | online) ;;
  *) die "JHUB_MODE must be air-gapped or online, got '${JHUB_MODE:-}'" ;;
  esac
  require_env JHUB_CHANNEL "the MicroK8s snap channel, e.g. 1.32/stable"
  [[ "$JHUB_CHANNEL" =~ ^[a-z0-9][a-z0-9.-]*(/(stable|candidate|beta|edge))?(/[a-z0-9][a-z0-9-]*)?$ ]] ||
    die "JHUB_CHANNEL must look like 1.32/stable, got '$JHUB_CHANNEL'"
  # snap reports a track without a risk as <track>/stable
  [[ "$JHUB_CHANNEL" == */* ]] || JHUB_CHANNEL="$JHUB_CHANNEL/stable"
  require_01 JHUB_RESET
  require_uint JHUB_WAIT_READY_TIMEOUT 600
  have_snapd || die "snap is not installed on $(node_label); MicroK8s needs snapd (Ubuntu ships it)"
  [ "$JHUB_MODE" = air-gapped ] || return 0

  require_env JHUB_SNAP_DIR "the directory on this host that holds the snap files"
  is_abs_path "$JHUB_SNAP_DIR" || die "JHUB_SNAP_DIR must be an absolute path, got '$JHUB_SNAP_DIR'"
  require_env JHUB_SNAPS "the 'name snapfile assertfile' lines of the snaps to install"
  dir="$(rootp "$JHUB_SNAP_DIR")"
  while IFS= read -r line; do
    n=$((n + 1))
    [ -n "${line// /}" ] || continue
    read -r name file assert _ <<<"$line"
    [[ "$name" =~ ^[a-z0-9][a-z0-9-]*$ && "$file" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ &&
      "${assert:-}" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] ||
      die "JHUB_SNAPS line $n must be 'name snapfile assertfile' (file names inside JHUB_SNAP_DIR), got '$line'"
    [ -f "$dir/$file" ] || die "snap file $JHUB_SNAP_DIR/$file is missing on $(node_label)"
    [ -f "$dir/$assert" ] || die "assertion file $JHUB_SNAP_DIR/$assert is missing on $(node_label)"
    # the revision snapd will install is the one the snap-revision assertion names
    rev="$(awk '$1 == "snap-revision:" { print $2; exit }' "$dir/$assert")"
    is_uint "$rev" || die "$JHUB_SNAP_DIR/$assert has no snap-revision header; use the .assert file that 'snap download' wrote beside $file"
    SNAP_NAMES+=("$name") SNAP_FILES+=("$dir/$file") SNAP_ASSERTS+=("$dir/$assert") SNAP_WANT_REVS+=("$rev")
  done <<<"$JHUB_SNAPS"
  [ "${SNAP_NAMES[${#SNAP_NAMES[@]} - 1]:-}" = microk8s ] ||
    die "JHUB_SNAPS must end with the microk8s line (base snaps first)"
}

want_desc() {
  if [ "$JHUB_MODE" = air-gapped ]; then
    printf 'rev %s from %s' "${SNAP_WANT_REVS[${#SNAP_WANT_REVS[@]} - 1]}" "$(unrootp "${SNAP_FILES[${#SNAP_FILES[@]} - 1]}")"
  else
    printf 'channel %s' "$JHUB_CHANNEL"
  fi
}

# is the installed microk8s the one the config asks for?
mk8s_matches() {
  if [ "$JHUB_MODE" = air-gapped ]; then
    [ "$SNAP_REV" = "${SNAP_WANT_REVS[${#SNAP_WANT_REVS[@]} - 1]}" ]
  else
    [ "$SNAP_TRACKING" = "$JHUB_CHANNEL" ]
  fi
}

installed_by_jhub() { [ -f "$(state_dir /microk8s.installed)" ]; }

# install_file I: ack the assertion and install snap number I of JHUB_SNAPS (install also refreshes)
install_file() {
  local i="$1" classic=()
  [ "${SNAP_NAMES[$i]}" != microk8s ] || classic=(--classic)
  snapc ack "${SNAP_ASSERTS[$i]}" >&2
  snapc_t "$INSTALL_TIMEOUT" install "${SNAP_FILES[$i]}" "${classic[@]}" >&2
  log "installed ${SNAP_NAMES[$i]} rev ${SNAP_WANT_REVS[$i]} from $(unrootp "${SNAP_FILES[$i]}")"
}

# base snaps (core20, snapd...): install when missing; a present one is kept, whatever its revision
ensure_base_snaps() {
  local i last=$((${#SNAP_NAMES[@]} - 1))
  for ((i = 0; i < last; i++)); do
    if snap_info "${SNAP_NAMES[$i]}"; then
      log "${SNAP_NAMES[$i]} rev $SNAP_REV already installed, skipping"
    else
      install_file "$i"
    fi
  done
}

install_microk8s() {
  if [ "$JHUB_MODE" = air-gapped ]; then
    ensure_base_snaps
    install_file $((${#SNAP_NAMES[@]} - 1))
  else
    snapc_t "$INSTALL_TIMEOUT" install microk8s --classic "--channel=$JHUB_CHANNEL" >&2
    log "installed microk8s from channel $JHUB_CHANNEL"
  fi
}

refresh_microk8s() {
  if [ "$JHUB_MODE" = air-gapped ]; then
    ensure_base_snaps
    install_file $((${#SNAP_NAMES[@]} - 1))
  else
    snapc_t "$INSTALL_TIMEOUT" refresh microk8s "--channel=$JHUB_CHANNEL" >&2
    log "refreshed microk8s to channel $JHUB_CHANNEL"
  fi
}

purge_microk8s() {
  log "JHUB_RESET=1: removing microk8s with --purge ($1)"
  snapc_t "$INSTALL_TIMEOUT" remove microk8s --purge >&2
  rm -f -- "$(state_dir /microk8s.installed)"
}

# install, refresh, adopt or refuse; prints nothing on stdout. Sets FRESH=1 when it installed.
ensure_microk8s() {
  FRESH=0
  if ! mk8s_installed; then
    install_microk8s
    FRESH=1
    return 0
  fi
  if mk8s_matches; then
    if [ "$JHUB_MODE" = air-gapped ]; then
      log "microk8s rev $SNAP_REV already installed, skipping"
    else
      log "microk8s $JHUB_CHANNEL already installed (rev $SNAP_REV), skipping"
    fi
    return 0
  fi
  local have="rev $SNAP_REV (tracking $SNAP_TRACKING)"
  if installed_by_jhub; then
    # jhub installed it and the config now asks for another revision or channel: an upgrade
    log "microk8s $have was installed by jhub; the config asks for $(want_desc), refreshing"
    refresh_microk8s
  elif [ "$JHUB_RESET" = 1 ]; then
    purge_microk8s "$have was not installed by jhub; the config asks for $(want_desc)"
    install_microk8s
    FRESH=1
  else
    die "microk8s $have is already installed on $(node_label) but not by jhub, and the config asks for $(want_desc). Remove it (sudo snap remove --purge microk8s) or set reset: true on jhub:nodes entry $(node_label), then run pulumi up again"
  fi
}

ensure_refresh_held() {
  snap_info microk8s || die "microk8s is not installed after installing it; see 'snap changes' on $(node_label)"
  if [[ ",$SNAP_NOTES," == *,held,* ]]; then
    log "automatic refreshes of microk8s already held"
  elif snapc refresh --hold=forever microk8s >/dev/null; then
    log "held automatic refreshes of microk8s (a site upgrade changes jhub:microk8s.channel instead)"
  else
    warn "could not hold automatic refreshes of microk8s (snapd older than 2.58?); continuing"
  fi
}

wait_ready() {
  mk8s_t $((JHUB_WAIT_READY_TIMEOUT + 30)) status --wait-ready --timeout "$JHUB_WAIT_READY_TIMEOUT" >/dev/null 2>&1
}

ensure_ready() {
  log "waiting up to ${JHUB_WAIT_READY_TIMEOUT}s for microk8s to be ready"
  if wait_ready; then
    log "microk8s is ready"
    return 0
  fi
  snap_info microk8s || true
  if [ "$JHUB_RESET" = 1 ] && [ "$FRESH" = 0 ]; then
    purge_microk8s "rev $SNAP_REV did not become ready within ${JHUB_WAIT_READY_TIMEOUT}s"
    install_microk8s
    FRESH=1
    ensure_refresh_held
    wait_ready || die "microk8s was reinstalled on $(node_label) but is still not ready after ${JHUB_WAIT_READY_TIMEOUT}s; run 'sudo microk8s inspect' there"
    log "microk8s is ready"
    return 0
  fi
  die "microk8s rev $SNAP_REV is installed on $(node_label) but not ready after ${JHUB_WAIT_READY_TIMEOUT}s (half-installed or broken). Run 'sudo microk8s inspect' there; to start it afresh, set reset: true on jhub:nodes entry $(node_label) (removes MicroK8s and its data on that node) or run 'sudo snap remove --purge microk8s' there, then run pulumi up again"
}

record_state() {
  snap_info microk8s || return 0
  printf 'mode=%s\nchannel=%s\nrevision=%s\n' "$JHUB_MODE" "$JHUB_CHANNEL" "$SNAP_REV" |
    ensure_file "$(state_dir /microk8s.installed)" 644
  [ "$JHUB_CHANGED" = 0 ] || log "recorded microk8s rev $SNAP_REV in /var/lib/jhub/microk8s.installed"
}

main() {
  validate
  ensure_microk8s
  ensure_refresh_held
  ensure_ready
  record_state
}

main "$@"
