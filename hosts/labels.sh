#!/usr/bin/env bash
# labels.sh (control plane): keep a node's jhub labels as the config lists them.
#
# Env:
#   JHUB_NODE_NAME          required; the node
#   JHUB_LABELS             newline-separated key=value lines (may be empty)
#   JHUB_NODE_WAIT_TIMEOUT  optional, seconds (default 300) to wait for a new node to register
# stdin: not read. stdout: nothing.
# Sets the listed labels that differ (`microk8s kubectl label node --overwrite`), removes labels jhub
# set earlier that are no longer listed, and never touches labels it did not set. What jhub set is
# kept in /var/lib/jhub/labels/<node>.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

NAME_RE='^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$'
PREFIX_RE='^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$'
KEYS=() VALUES=()

validate() {
  local line n=0 key value prefix name k
  require_env JHUB_NODE_NAME "the node to label"
  is_node_name "$JHUB_NODE_NAME" || die "JHUB_NODE_NAME '$JHUB_NODE_NAME' is not a valid node name"
  require_uint JHUB_NODE_WAIT_TIMEOUT 300
  while IFS= read -r line; do
    n=$((n + 1))
    [ -n "${line// /}" ] || continue
    [[ "$line" == *=* ]] || die "JHUB_LABELS line $n must be key=value, got '$line'"
    key="${line%%=*}" value="${line#*=}"
    name="$key" prefix=""
    if [[ "$key" == */* ]]; then prefix="${key%%/*}" name="${key#*/}"; fi
    if [ -n "$prefix" ] && { [ "${#prefix}" -gt 253 ] || ! [[ "$prefix" =~ $PREFIX_RE ]]; }; then
      die "label key '$key' (node $JHUB_NODE_NAME): the prefix must be a lowercase DNS name like example.com"
    fi
    [[ "$name" =~ $NAME_RE ]] ||
      die "label key '$key' (node $JHUB_NODE_NAME): the name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    [ -z "$value" ] || [[ "$value" =~ $NAME_RE ]] ||
      die "label $key (node $JHUB_NODE_NAME): value '$value' must be empty or 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    for k in "${KEYS[@]}"; do [ "$k" != "$key" ] || die "label key '$key' is listed twice for node $JHUB_NODE_NAME"; done
    KEYS+=("$key") VALUES+=("$value")
  done <<<"${JHUB_LABELS:-}"
}

node_exists() { kctl get node "$JHUB_NODE_NAME" -o name >/dev/null 2>&1; }

# CURRENT: the node's labels as key=value lines
read_labels() {
  # shellcheck disable=SC2016 # a Go template for kubectl, not shell
  CURRENT="$(kctl get node "$JHUB_NODE_NAME" \
    -o 'go-template={{range $k, $v := .metadata.labels}}{{$k}}={{$v}}{{"\n"}}{{end}}')" ||
    die "cannot read the labels of node $JHUB_NODE_NAME"
}
has_label() { grep -qxF -- "$1" <<<"$CURRENT"; }
has_key() { awk -F= -v k="$1" '$1 == k { found = 1 } END { exit !found }' <<<"$CURRENT"; }

main() {
  local i state prev key set=() unset=()
  validate
  wait_for "$JHUB_NODE_WAIT_TIMEOUT" node_exists ||
    die "node $JHUB_NODE_NAME has not registered with the cluster after ${JHUB_NODE_WAIT_TIMEOUT}s; check that it joined (microk8s kubectl get nodes)"
  read_labels
  state="$(state_dir "/labels/$JHUB_NODE_NAME")"
  prev="$(cat "$state" 2>/dev/null || true)"

  for i in "${!KEYS[@]}"; do
    if has_label "${KEYS[$i]}=${VALUES[$i]}"; then
      log "label ${KEYS[$i]}=${VALUES[$i]} already set, skipping"
    else
      set+=("${KEYS[$i]}=${VALUES[$i]}")
    fi
  done
  while IFS= read -r key; do
    [ -n "$key" ] || continue
    for i in "${!KEYS[@]}"; do [ "${KEYS[$i]}" != "$key" ] || continue 2; done
    if has_key "$key"; then unset+=("$key-"); fi
  done <<<"$prev"

  if [ "${#set[@]}" -gt 0 ]; then
    kctl label node "$JHUB_NODE_NAME" --overwrite "${set[@]}" >/dev/null
    log "node $JHUB_NODE_NAME: set ${set[*]}"
  fi
  if [ "${#unset[@]}" -gt 0 ]; then
    kctl label node "$JHUB_NODE_NAME" "${unset[@]}" >/dev/null
    log "node $JHUB_NODE_NAME: removed labels jhub set earlier: ${unset[*]%-}"
  fi
  # what jhub owns now: the listed keys
  if [ "${#KEYS[@]}" -gt 0 ]; then printf '%s\n' "${KEYS[@]}" | sort | ensure_file "$state" 644; else ensure_absent "$state"; fi
}

main "$@"
