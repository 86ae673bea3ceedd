#!/usr/bin/env bash
# jhub host library: the helpers every hosts/*.sh uses.
#
# The Pulumi components upload each hosts/*.sh with this file to /var/lib/jhub/scripts/<unit>/ (unit:
# the sha256 of the script and lib.sh) on every node and run `bash /var/lib/jhub/scripts/<unit>/<script>.sh
# [args]`; the script sources this file from its own folder. (`bash -c '<lib.sh>\n<script.sh>' jhub-<script>` works
# too: a script does not source it again.) Either way:
# - stdout carries machine output only (facts JSON, kubeconfig, an address); every human line goes
#   to stderr through log(), saying what was done or skipped;
# - JHUB_ROOT (default empty) prefixes every file path, so tests run in a temporary root; live kernel
#   actions (swapoff, modprobe, sysctl) are skipped when it is set;
# - secrets arrive on stdin only and are never logged.
# The variables set here are read by the scripts that source this file:
# shellcheck disable=SC2034
set -euo pipefail
# `producer | ensure_file ...` must set JHUB_CHANGED in this shell, not in a pipeline subshell
shopt -s lastpipe

JHUB_LIB_LOADED=1
JHUB_ROOT="${JHUB_ROOT:-}"
JHUB_ROOT="${JHUB_ROOT%/}"
# jhub-install -> install; hosts/install.sh -> install
JHUB_SCRIPT="$(basename -- "$0" .sh)"
JHUB_SCRIPT="${JHUB_SCRIPT#jhub-}"
JHUB_CHANGED=0
# Default bound for one microk8s/snap call; long steps pass their own.
JHUB_CALL_TIMEOUT="${JHUB_CALL_TIMEOUT:-300}"
JHUB_POLL_INTERVAL="${JHUB_POLL_INTERVAL:-5}"
# A long silent step (an image import, a snap install) logs a line this often (seconds), so the SSH
# session it runs in is not cut off by an idle timeout (pulumi-command sends no keepalives).
JHUB_PROGRESS_INTERVAL="${JHUB_PROGRESS_INTERVAL:-60}"

# ---------------------------------------------------------------------------------------------
# logging

log() { printf 'jhub[%s]: %s\n' "$JHUB_SCRIPT" "$*" >&2; }
warn() { printf 'jhub[%s]: warning: %s\n' "$JHUB_SCRIPT" "$*" >&2; }
die() {
  printf 'jhub[%s]: error: %s\n' "$JHUB_SCRIPT" "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# paths (all under JHUB_ROOT)

rootp() { printf '%s%s' "$JHUB_ROOT" "$1"; }
# MicroK8s's writable data ($SNAP_DATA), e.g. mk8s_data /args/kubelet
mk8s_data() { printf '%s/var/snap/microk8s/current%s' "$JHUB_ROOT" "${1:-}"; }
# jhub's own state on the host
state_dir() { printf '%s/var/lib/jhub%s' "$JHUB_ROOT" "${1:-}"; }
# the host path as the host sees it, without JHUB_ROOT (for messages and file contents)
unrootp() { printf '%s' "${1#"$JHUB_ROOT"}"; }

live() { [ -z "$JHUB_ROOT" ]; }

# ---------------------------------------------------------------------------------------------
# validation

is_uint() { [[ "${1:-}" =~ ^[0-9]+$ ]]; }
is_ipv4() {
  local IFS=. a b c d
  [[ "${1:-}" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || return 1
  read -r a b c d <<<"$1"
  [ "$a" -le 255 ] && [ "$b" -le 255 ] && [ "$c" -le 255 ] && [ "$d" -le 255 ]
}
is_ipv6() { [[ "${1:-}" =~ ^[0-9A-Fa-f:.]+$ ]] && [[ "$1" == *:*:* || "$1" == *::* ]]; }
is_ip() { is_ipv4 "${1:-}" || is_ipv6 "${1:-}"; }
# RFC 1123 host name (lowercase or not), e.g. gpu01 or harbor.lab.local
is_hostname() {
  [ "${#1}" -le 253 ] && [[ "$1" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ ]]
}
# Kubernetes node name: lowercase RFC 1123 subdomain (no "_", no capitals)
is_node_name() { is_hostname "$1" && [[ "$1" != *[A-Z]* ]]; }
# a path on the host: absolute, no "..", no odd characters
is_abs_path() { [[ "${1:-}" =~ ^/[A-Za-z0-9._/+@-]*$ ]] && [[ "$1" != *..* ]]; }

# require_env NAME WHAT: NAME must be set and non-empty
require_env() {
  [ -n "${!1:-}" ] || die "$1 is required: $2"
}
# require_uint NAME DEFAULT: NAME (default DEFAULT) must be a whole number
require_uint() {
  local v="${!1:-$2}"
  is_uint "$v" || die "$1 must be a whole number of seconds, got '$v'"
  printf -v "$1" '%s' "$v"
}
# require_01 NAME: NAME (default 0) must be 0 or 1
require_01() {
  local v="${!1:-0}"
  [[ "$v" == 0 || "$v" == 1 ]] || die "$1 must be 0 or 1, got '$v'"
  printf -v "$1" '%s' "$v"
}

# node_label: how messages name this node (JHUB_NODE_NAME when the component passes it)
node_label() { printf '%s' "${JHUB_NODE_NAME:-$(uname -n)}"; }
# host_node_name: the name a kubelet registers by default: the whole host name (an FQDN too) in lower
# case, without a trailing dot
host_node_name() {
  local h
  h="$(uname -n | tr '[:upper:]' '[:lower:]')"
  printf '%s' "${h%.}"
}

# ---------------------------------------------------------------------------------------------
# secrets (stdin only)

# read_token: line 1 of stdin is the cluster join token. Sets JHUB_TOKEN_VALUE. Never logged.
read_token() {
  local t=""
  IFS= read -r t || true
  t="${t%$'\r'}"
  [[ "$t" =~ ^[A-Za-z0-9]{32,128}$ ]] ||
    die "stdin line 1 must be the cluster join token (32 or more letters and digits); got ${#t} characters"
  JHUB_TOKEN_VALUE="$t"
}
# redact TEXT: TEXT with the join token replaced, for logging command output
redact() {
  local s="$1"
  if [ -n "${JHUB_TOKEN_VALUE:-}" ]; then s="${s//"$JHUB_TOKEN_VALUE"/<token>}"; fi
  printf '%s' "$s"
}

# ---------------------------------------------------------------------------------------------
# files: check-then-act writes

# ensure_file PATH MODE < CONTENT: write PATH only when its content or mode differs.
# Sets JHUB_CHANGED=1 when it wrote, 0 when PATH was already right.
ensure_file() {
  local path="$1" mode="$2" tmp
  mkdir -p -- "$(dirname -- "$path")"
  tmp="$(mktemp "$path.jhub-XXXXXX")"
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [ -f "$path" ] && cmp -s "$tmp" "$path" && [ "$(stat -c %a "$path")" = "$(stat -c %a "$tmp")" ]; then
    rm -f -- "$tmp"
    JHUB_CHANGED=0
    return 0
  fi
  # atomic replace; a bind-mounted file (/etc/hosts in a container) cannot be renamed over
  if ! mv -f -- "$tmp" "$path" 2>/dev/null; then
    cat "$tmp" >"$path"
    chmod "$mode" "$path"
    rm -f -- "$tmp"
  fi
  JHUB_CHANGED=1
}

# ensure_absent PATH: remove PATH (file or directory) when present. Sets JHUB_CHANGED.
ensure_absent() {
  if [ -e "$1" ] || [ -L "$1" ]; then
    rm -rf -- "$1"
    JHUB_CHANGED=1
  else
    JHUB_CHANGED=0
  fi
}

# file_mode PATH DEFAULT: the octal mode of PATH, or DEFAULT when it does not exist
file_mode() { if [ -e "$1" ]; then stat -c %a "$1"; else printf '%s' "$2"; fi; }

# ensure_block FILE NAME < LINES: the lines between "# BEGIN NAME ..." and "# END NAME" become
# exactly LINES. The block keeps its place; it is appended when absent and removed when LINES is
# empty. Everything outside the block stays as it was. Sets JHUB_CHANGED.
ensure_block() {
  local file="$1" name="$2" body blockf out begins ends
  body="$(cat)"
  blockf="$(mktemp)"
  out="$(mktemp)"
  if [ -n "$body" ]; then
    printf '# BEGIN %s (managed by jhub; edits inside this block are replaced)\n%s\n# END %s\n' \
      "$name" "$body" "$name" >"$blockf"
  fi
  if [ -e "$file" ]; then
    begins="$(awk -v b="# BEGIN $name" '$0 == b || index($0, b " (") == 1' "$file" | wc -l)"
    ends="$(awk -v e="# END $name" '$0 == e' "$file" | wc -l)"
    if [ "$begins" != "$ends" ] || [ "$begins" -gt 1 ]; then
      rm -f -- "$blockf" "$out"
      die "$(unrootp "$file") has $begins '# BEGIN $name' and $ends '# END $name' lines; fix the jhub block by hand"
    fi
    awk -v b="# BEGIN $name" -v e="# END $name" -v blockf="$blockf" '
      function emit(   l) { while ((getline l < blockf) > 0) print l; close(blockf); done = 1 }
      !skip && ($0 == b || index($0, b " (") == 1) { skip = 1; if (!done) emit(); next }
      skip && $0 == e { skip = 0; next }
      !skip { print }
      END { if (!done) emit() }' "$file" >"$out"
  else
    cat "$blockf" >"$out"
  fi
  ensure_file "$file" "$(file_mode "$file" 644)" <"$out"
  rm -f -- "$blockf" "$out"
}

# ---------------------------------------------------------------------------------------------
# waiting and bounded commands

# wait_for SECS CMD...: run CMD every JHUB_POLL_INTERVAL seconds until it succeeds; 1 after SECS
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep "$JHUB_POLL_INTERVAL"
  done
}

# with_progress WHAT CMD...: run CMD (bounded by the caller), logging "WHAT: still running after Ns"
# every JHUB_PROGRESS_INTERVAL seconds until it ends. Returns CMD's exit status.
with_progress() {
  local what="$1" pid rc=0 start="$SECONDS" next tick=0.1
  shift
  is_uint "$JHUB_PROGRESS_INTERVAL" && [ "$JHUB_PROGRESS_INTERVAL" -gt 0 ] ||
    die "JHUB_PROGRESS_INTERVAL must be a whole number of seconds above 0, got '$JHUB_PROGRESS_INTERVAL'"
  next=$((start + JHUB_PROGRESS_INTERVAL))
  "$@" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    # short calls end at once; long ones are looked at every second
    sleep "$tick"
    [ $((SECONDS - start)) -lt 2 ] || tick=1
    if [ "$SECONDS" -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
      log "$what: still running after $((SECONDS - start))s"
      next=$((SECONDS + JHUB_PROGRESS_INTERVAL))
    fi
  done
  wait "$pid" || rc=$?
  return "$rc"
}

# mk8s ARGS...: microk8s, bounded so a hung daemon cannot hang `pulumi up`
mk8s() { timeout -k 10 "$JHUB_CALL_TIMEOUT" microk8s "$@"; }
# mk8s_t SECS ARGS...: microk8s bounded by SECS
mk8s_t() {
  local secs="$1"
  shift
  timeout -k 10 "$secs" microk8s "$@"
}
kctl() { mk8s kubectl "$@"; }
snapc() { timeout -k 10 "$JHUB_CALL_TIMEOUT" snap "$@"; }
snapc_t() {
  local secs="$1"
  shift
  timeout -k 10 "$secs" snap "$@"
}

# ---------------------------------------------------------------------------------------------
# snaps and MicroK8s state

have_snapd() { command -v snap >/dev/null 2>&1; }

# snap_info NAME: sets SNAP_VERSION SNAP_REV SNAP_TRACKING SNAP_NOTES; 1 when NAME is not installed
snap_info() {
  local line=""
  SNAP_VERSION="" SNAP_REV="" SNAP_TRACKING="" SNAP_NOTES=""
  have_snapd || return 1
  line="$(snapc list "$1" 2>/dev/null | awk -v n="$1" '$1 == n')" || true
  [ -n "$line" ] || return 1
  read -r _ SNAP_VERSION SNAP_REV SNAP_TRACKING _ SNAP_NOTES _ <<<"$line"
}

mk8s_installed() { snap_info microk8s; }
# a worker that joined a cluster has this lock (MicroK8s's own clustered state)
mk8s_clustered_worker() { [ -e "$(mk8s_data /var/lock/clustered.lock)" ]; }
# snap_service_active SERVICE: e.g. microk8s.daemon-kubelite is active
snap_service_active() {
  snapc services "$1" 2>/dev/null | awk -v s="$1" '$1 == s && $3 == "active" { found = 1 } END { exit !found }'
}

# set_service_arg SERVICE FLAG [VALUE]: in args/SERVICE (kubelet, kube-proxy), FLAG=VALUE in place of
# the first earlier FLAG (later duplicates dropped) or appended; without VALUE, every FLAG line goes.
# Sets JHUB_CHANGED.
set_service_arg() {
  local args line=""
  args="$(mk8s_data "/args/$1")"
  [ -z "${3:-}" ] || line="$2=$3"
  awk -v flag="$2" -v line="$line" '
    $0 == flag || index($0, flag "=") == 1 || index($0, flag " ") == 1 { if (!done && line != "") print line; done = 1; next }
    { print }
    END { if (!done && line != "") print line }' "$args" |
    ensure_file "$args" "$(file_mode "$args" 660)"
}
# service_arg SERVICE FLAG: the value of FLAG=VALUE in args/SERVICE (empty when absent)
service_arg() {
  awk -v flag="$2" 'index($0, flag "=") == 1 { print substr($0, length(flag) + 2); exit }' "$(mk8s_data "/args/$1")" 2>/dev/null || true
}

# set_kubelet_node_ip ADDRESS: --node-ip=ADDRESS in args/kubelet. Sets JHUB_CHANGED.
set_kubelet_node_ip() { set_service_arg kubelet --node-ip "$1"; }
kubelet_node_ip() { service_arg kubelet --node-ip; }

# set_node_name NAME: the kubelet and kube-proxy register this node as NAME: no --hostname-override when
# NAME is the name they find themselves (host_node_name), else --hostname-override=NAME in both (kube-proxy
# must use the kubelet's node name). Sets JHUB_CHANGED when either file changed.
set_node_name() {
  local want="" changed=0 service
  [ "$1" = "$(host_node_name)" ] || want="$1"
  for service in kubelet kube-proxy; do
    [ -f "$(mk8s_data "/args/$service")" ] || continue
    set_service_arg "$service" --hostname-override "$want"
    [ "$JHUB_CHANGED" = 0 ] || changed=1
  done
  JHUB_CHANGED="$changed"
}

# the cluster a worker joined through jhub (empty when none)
marker_file() { state_dir /cluster-id; }
marker_cluster_id() { if [ -f "$(marker_file)" ]; then head -n 1 "$(marker_file)"; fi; }

# What jhub knows about this node's MicroK8s (install.sh and ready.sh write these):
#   microk8s.installed  mode, channel, revision and origin: jhub (jhub installed it) or adopted (it was
#                       there already, with the configured revision or channel)
#   ready-once          written the first time ready.sh saw the node ready; never removed while that
#                       MicroK8s stays installed
#   not-ready           the last wait for containerd or readiness failed (removed once ready)
install_record() { state_dir /microk8s.installed; }
ready_once_file() { state_dir /ready-once; }
not_ready_file() { state_dir /not-ready; }
# install_origin: jhub, adopted, or nothing when jhub has no record. A record written before jhub kept
# the origin was written by install.sh after its own readiness wait, so it counts as jhub's.
install_origin() {
  [ -f "$(install_record)" ] || return 0
  awk -F= '$1 == "origin" { o = $2 } END { print (o == "" ? "jhub" : o) }' "$(install_record)"
}
# half-installed: jhub installed it and it has never been ready
half_installed() { [ "$(install_origin)" = jhub ] && [ ! -f "$(ready_once_file)" ]; }
# mark_not_ready WHAT: remember that a wait failed (install.sh may then reset the node, when permitted)
mark_not_ready() {
  mkdir -p -- "$(state_dir)"
  printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" >"$(not_ready_file)"
}

# ---------------------------------------------------------------------------------------------
# reset permission (install.sh, join.sh)
#
# JHUB_RESET_ID empty: no reset. Any other value permits ONE reset on this host: when a reset happens,
# the id is recorded in /var/lib/jhub/resets, and a recorded id permits nothing more. A reset happens
# only when the node needs one (half-installed after a failed wait, or a member of another cluster).

resets_file() { state_dir /resets; }

# check_reset_id: validates JHUB_RESET_ID and sets RESET_OK=1 when it permits a reset now
check_reset_id() {
  local used
  JHUB_RESET_ID="${JHUB_RESET_ID:-}" RESET_OK=0
  [ -n "$JHUB_RESET_ID" ] || return 0
  [[ "$JHUB_RESET_ID" =~ ^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$ ]] ||
    die "JHUB_RESET_ID must be empty or 1-128 letters, digits, '.', '_', ':', '@', '+' or '-' (starting with a letter or digit), got '$JHUB_RESET_ID'"
  used="$(awk -v id="$JHUB_RESET_ID" '$1 == id { print $2; exit }' "$(resets_file)" 2>/dev/null || true)"
  if [ -n "$used" ]; then
    log "reset '$JHUB_RESET_ID' was already used on this host ($used UTC) and permits nothing more; remove or change reset on jhub:nodes entry $(node_label)"
    return 0
  fi
  RESET_OK=1
}

# consume_reset WHAT: record that JHUB_RESET_ID is used, before the reset starts (one id, one reset)
consume_reset() {
  mkdir -p -- "$(state_dir)"
  printf '%s %s %s: %s\n' "$JHUB_RESET_ID" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$JHUB_SCRIPT" "$1" >>"$(resets_file)"
  RESET_OK=0
  log "reset '$JHUB_RESET_ID' used (recorded in /var/lib/jhub/resets): $1"
}

# reset_hint: how a person permits a reset, for error messages
reset_hint() {
  printf 'set reset to a new value (any word, e.g. the date; a value used before permits nothing) on jhub:nodes entry %s' "$(node_label)"
}

# registry.sh writes this first line into every hosts.toml it manages (ready.sh looks for it)
REGISTRY_MARK="# managed by jhub: pulls from this registry go to the site mirror"

# ---------------------------------------------------------------------------------------------
# JSON (facts)

# json_str TEXT: TEXT as a JSON string, escaped
json_str() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\n'/\\n}"
  s="${s//$'\r'/\\r}"
  s="${s//$'\t'/\\t}"
  # other control characters never belong in what we report; drop them to stay valid JSON
  s="$(printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037\177')"
  printf '"%s"' "$s"
}
# json_str_or_null TEXT: null when TEXT is empty
json_str_or_null() { if [ -n "$1" ]; then json_str "$1"; else printf 'null'; fi; }
# json_num TEXT: TEXT when it is a whole number, else null
json_num() { if is_uint "$1"; then printf '%s' "$((10#$1))"; else printf 'null'; fi; }
json_bool() { if [ "$1" = 1 ] || [ "$1" = true ]; then printf 'true'; else printf 'false'; fi; }
# json_join ITEMS...: ITEMS joined by ","
json_join() {
  local IFS=,
  printf '%s' "$*"
}
