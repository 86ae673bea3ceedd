#!/usr/bin/env bash
# install.sh: install MicroK8s (from snap files offline, or from the store online), hold its automatic
# refreshes, and wait until its containerd answers. It does not wait for the node to be Ready: on an
# air-gapped node that needs the Calico and pause images, which images.sh (or registry.sh) provides
# after this script; ready.sh waits for it.
#
# Env:
#   JHUB_MODE                required; air-gapped | online
#   JHUB_CHANNEL             required; e.g. 1.32/stable (online: the channel to track)
#   JHUB_SNAP_DIR            air-gapped: required; directory holding the snap and assertion files
#   JHUB_SNAPS               air-gapped: required; newline-separated "name snapfile assertfile" lines
#                            (file names inside JHUB_SNAP_DIR), installed in the order given, e.g.
#                            snapd, core20, microk8s; microk8s must be the last line. A snap other than
#                            microk8s that is installed already is kept, whatever its revision.
#   JHUB_RESET_ID            optional (default empty: no reset). Any other value permits ONE reset on
#                            this host (lib.sh records used ids in /var/lib/jhub/resets): removing
#                            MicroK8s with --purge and installing it afresh, and only when the node
#                            needs it (see below).
#   JHUB_CONTAINERD_TIMEOUT  optional, seconds (default 300) to wait for `microk8s ctr version`
#   JHUB_PROGRESS_INTERVAL   optional, seconds (default 60) between "still running" lines of a snap
#                            install, refresh or removal (they print nothing for minutes)
#   JHUB_NODE_NAME           optional; the node's name in jhub:nodes. When it is not the host name
#                            (lower-cased, an FQDN whole), the kubelet and kube-proxy get
#                            --hostname-override=<name> (args/kubelet, args/kube-proxy), so the node
#                            registers under it; when it is, no --hostname-override is left there. Unset:
#                            the kubelet's arguments stay as they are and messages name the host.
# stdin: not read. stdout: nothing.
# State: /var/lib/jhub/microk8s.installed (mode, channel, revision, origin=jhub|adopted), written before
# jhub installs anything, so an interrupted install is still known as jhub's; not-ready when containerd
# does not answer (see lib.sh).
#
# A MicroK8s already on the host:
# - installed by jhub: kept; refreshed when the config asks for another revision or channel. When it is
#   half-installed (never ready, and a wait for it failed), JHUB_RESET_ID may purge and reinstall it.
# - not installed by jhub, with the configured revision (air-gapped) or channel (online): adopted. jhub
#   never refreshes or removes an adopted MicroK8s unless JHUB_RESET_ID permits it.
# - not installed by jhub, other revision or channel: refused, unless JHUB_RESET_ID permits a reset.
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
  check_reset_id
  require_uint JHUB_CONTAINERD_TIMEOUT 300
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
    die "JHUB_SNAPS must end with the microk8s line (snapd and base snaps first, in the order to install them)"
  for ((n = 0; n < ${#SNAP_NAMES[@]} - 1; n++)); do
    [ "${SNAP_NAMES[$n]}" != microk8s ] || die "JHUB_SNAPS lists microk8s more than once"
  done
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

# install_file I: ack the assertion and install snap number I of JHUB_SNAPS (install also refreshes)
install_file() {
  local i="$1" classic=()
  [ "${SNAP_NAMES[$i]}" != microk8s ] || classic=(--classic)
  snapc ack "${SNAP_ASSERTS[$i]}" >&2
  with_progress "installing ${SNAP_NAMES[$i]}" snapc_t "$INSTALL_TIMEOUT" install "${SNAP_FILES[$i]}" "${classic[@]}" >&2
  log "installed ${SNAP_NAMES[$i]} rev ${SNAP_WANT_REVS[$i]} from $(unrootp "${SNAP_FILES[$i]}")"
}

# the snaps before microk8s (snapd, core20...), in the order given: install when missing; a present one
# is kept, whatever its revision
ensure_prerequisite_snaps() {
  local i last=$((${#SNAP_NAMES[@]} - 1))
  for ((i = 0; i < last; i++)); do
    if snap_info "${SNAP_NAMES[$i]}"; then
      log "${SNAP_NAMES[$i]} rev $SNAP_REV already installed, skipping"
    else
      install_file "$i"
    fi
  done
}

# record_state [REVISION]: mode, channel, revision and origin, when any of them changed
record_state() {
  local rev="${1:-}"
  if [ -z "$rev" ] && snap_info microk8s; then rev="$SNAP_REV"; fi
  printf 'mode=%s\nchannel=%s\nrevision=%s\norigin=%s\n' "$JHUB_MODE" "$JHUB_CHANNEL" "${rev:-none}" "$ORIGIN" |
    ensure_file "$(install_record)" 644
  [ "$JHUB_CHANGED" = 0 ] || log "recorded microk8s (rev ${rev:-none}, origin $ORIGIN) in /var/lib/jhub/microk8s.installed"
}

# a fresh install: recorded as jhub's before anything is installed; it has never been ready
install_microk8s() {
  ORIGIN=jhub
  record_state none
  ensure_absent "$(ready_once_file)"
  ensure_absent "$(not_ready_file)"
  if [ "$JHUB_MODE" = air-gapped ]; then
    ensure_prerequisite_snaps
    install_file $((${#SNAP_NAMES[@]} - 1))
  else
    with_progress "installing microk8s" snapc_t "$INSTALL_TIMEOUT" install microk8s --classic "--channel=$JHUB_CHANNEL" >&2
    log "installed microk8s from channel $JHUB_CHANNEL"
  fi
  record_state
}

refresh_microk8s() {
  if [ "$JHUB_MODE" = air-gapped ]; then
    ensure_prerequisite_snaps
    install_file $((${#SNAP_NAMES[@]} - 1))
  else
    with_progress "refreshing microk8s" snapc_t "$INSTALL_TIMEOUT" refresh microk8s "--channel=$JHUB_CHANNEL" >&2
    log "refreshed microk8s to channel $JHUB_CHANNEL"
  fi
}

# reset_reinstall WHY: use the reset permission, purge MicroK8s and install it afresh
reset_reinstall() {
  consume_reset "remove microk8s with --purge and install it afresh ($1)"
  with_progress "removing microk8s" snapc_t "$INSTALL_TIMEOUT" remove microk8s --purge >&2 ||
    die "snap remove --purge microk8s failed on $(node_label); see 'snap changes' there"
  log "removed microk8s with --purge"
  install_microk8s
}

have_desc() { printf 'rev %s (tracking %s)' "$SNAP_REV" "$SNAP_TRACKING"; }

# A record without an origin line comes from an earlier jhub, which wrote it only after MicroK8s
# was ready: keep that knowledge, so the node is never taken for half-installed.
migrate_legacy_record() {
  [ -f "$(install_record)" ] && ! grep -q '^origin=' "$(install_record)" || return 0
  [ -f "$(ready_once_file)" ] ||
    printf 'revision=%s\nfirst-ready=before %s (recorded by an earlier jhub)\n' \
      "$(awk -F= '$1 == "revision" { print $2 }' "$(install_record)")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" |
    ensure_file "$(ready_once_file)" 644
  log "microk8s was recorded as ready by an earlier jhub; kept that in /var/lib/jhub/ready-once"
}

# install, refresh, adopt, reset or refuse. Sets ORIGIN.
ensure_microk8s() {
  migrate_legacy_record
  ORIGIN="$(install_origin)"
  if ! mk8s_installed; then
    [ -z "$ORIGIN" ] || log "microk8s is not installed although /var/lib/jhub/microk8s.installed names it (removed by hand?); installing it"
    install_microk8s
    return 0
  fi
  case "$ORIGIN" in
  "")
    if mk8s_matches; then
      ORIGIN=adopted
      log "microk8s $(have_desc) was installed outside jhub and matches the config; adopting it (jhub never refreshes or removes an adopted MicroK8s)"
      return 0
    fi
    [ "$RESET_OK" = 1 ] ||
      die "microk8s $(have_desc) is already installed on $(node_label) but not by jhub, and the config asks for $(want_desc). Remove it (sudo snap remove --purge microk8s) or $(reset_hint), then run pulumi up again"
    reset_reinstall "microk8s $(have_desc) was not installed by jhub; the config asks for $(want_desc)"
    ;;
  adopted)
    if mk8s_matches; then
      log "microk8s $(have_desc) (adopted: installed outside jhub) matches the config, skipping"
      return 0
    fi
    [ "$RESET_OK" = 1 ] ||
      die "microk8s $(have_desc) on $(node_label) was installed outside jhub (adopted), so jhub never refreshes or removes it, and the config now asks for $(want_desc). Move it yourself ($(move_advice)), or $(reset_hint) to let jhub remove it with all its data and install $(want_desc); then run pulumi up again"
    reset_reinstall "adopted microk8s $(have_desc); the config asks for $(want_desc)"
    ;;
  *)
    if half_installed && [ -f "$(not_ready_file)" ]; then
      if [ "$RESET_OK" = 1 ]; then
        reset_reinstall "jhub installed microk8s $(have_desc) but it has never been ready (last failure: $(cat "$(not_ready_file)"))"
        return 0
      fi
      log "microk8s $(have_desc) was installed by jhub but has never been ready (last failure: $(cat "$(not_ready_file)")); keeping it. If it stays broken, $(reset_hint)"
    fi
    if mk8s_matches; then
      if [ "$JHUB_MODE" = air-gapped ]; then
        log "microk8s rev $SNAP_REV already installed, skipping"
      else
        log "microk8s $JHUB_CHANNEL already installed (rev $SNAP_REV), skipping"
      fi
      return 0
    fi
    # jhub installed it and the config now asks for another revision or channel: an upgrade
    log "microk8s $(have_desc) was installed by jhub; the config asks for $(want_desc), refreshing"
    refresh_microk8s
    ;;
  esac
}

move_advice() {
  if [ "$JHUB_MODE" = air-gapped ]; then
    printf 'sudo snap ack %s && sudo snap install %s --classic' \
      "$(unrootp "${SNAP_ASSERTS[${#SNAP_ASSERTS[@]} - 1]}")" "$(unrootp "${SNAP_FILES[${#SNAP_FILES[@]} - 1]}")"
  else
    printf 'sudo snap refresh microk8s --channel=%s' "$JHUB_CHANNEL"
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

containerd_answers() { mk8s_t 30 ctr version >/dev/null 2>&1; }

ensure_containerd() {
  local hint=""
  if containerd_answers; then
    log "containerd of microk8s answers"
    return 0
  fi
  log "waiting up to ${JHUB_CONTAINERD_TIMEOUT}s for containerd of microk8s to answer"
  if wait_for "$JHUB_CONTAINERD_TIMEOUT" containerd_answers; then
    log "containerd of microk8s answers"
    return 0
  fi
  mark_not_ready "install.sh: containerd did not answer within ${JHUB_CONTAINERD_TIMEOUT}s"
  ! half_installed || hint=" If it stays broken, $(reset_hint) to let jhub remove MicroK8s with its data and install it afresh."
  die "microk8s rev $SNAP_REV is installed on $(node_label) but its containerd does not answer after ${JHUB_CONTAINERD_TIMEOUT}s ('microk8s ctr version' fails). See 'sudo snap logs -n 50 microk8s.daemon-containerd' and 'sudo microk8s inspect' there, then run pulumi up again.$hint"
}

ensure_node_name() {
  if [ -z "${JHUB_NODE_NAME:-}" ]; then
    log "JHUB_NODE_NAME is not set: the kubelet's node name stays as it is"
    return 0
  fi
  is_node_name "$JHUB_NODE_NAME" || die "JHUB_NODE_NAME '$JHUB_NODE_NAME' is not a valid node name (lowercase letters, digits, '-' and '.')"
  set_node_name "$JHUB_NODE_NAME"
  if [ "$JHUB_CHANGED" = 0 ]; then
    log "the kubelet already registers this node as $JHUB_NODE_NAME"
    return 0
  fi
  snapc restart microk8s.daemon-kubelite >/dev/null ||
    die "restarting kubelite on $(node_label) failed; see 'sudo snap logs -n 50 microk8s.daemon-kubelite' there"
  if [ "$JHUB_NODE_NAME" = "$(host_node_name)" ]; then
    log "the kubelet registers this node by its host name $JHUB_NODE_NAME (removed --hostname-override); restarted kubelite"
  else
    log "the kubelet registers this node as $JHUB_NODE_NAME (--hostname-override; the host name is $(uname -n)); restarted kubelite"
  fi
}

main() {
  validate
  ensure_microk8s
  ensure_refresh_held
  record_state
  ensure_node_name
  ensure_containerd
}

main "$@"
