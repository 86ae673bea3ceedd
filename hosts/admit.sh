#!/usr/bin/env bash
# admit.sh add|remove (control plane, once per worker): let a worker in, or take it out.
#
# Env:
#   JHUB_NODE_NAME     required; the worker's node name
#   JHUB_NODE_ADDRESS  add: required; the worker's address on the cluster network
#   JHUB_TOKEN_TTL     add: optional, seconds the join token stays valid (default 315360000, 10 years)
# stdin (add only): line 1 is the cluster join token (32+ letters and digits). It is never logged and
#   reaches no command line except the `microk8s add-node --token` call that registers it.
# stdout: nothing.
#
# add: the worker gets its own block in this host's /etc/hosts (so the control plane resolves it), and
#   the token is registered with `microk8s add-node --token <t> --token-ttl <ttl>` unless it already
#   is. MicroK8s keeps such tokens in credentials/cluster-tokens.txt as "<token>|<expiry>"; a token
#   with an expiry is NOT consumed by a join (only one without expiry is), so every worker joins with
#   the same token until it expires. Tokens in persistent-cluster-tokens.txt never expire.
# remove: `microk8s remove-node <name> --force` when the cluster knows the node, and its hosts block goes.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# re-register when less than a day of validity is left
TOKEN_MARGIN=86400

validate() {
  case "${ACTION:-}" in
  add | remove) ;;
  *) die "usage: admit.sh add|remove (got '${ACTION:-}')" ;;
  esac
  require_env JHUB_NODE_NAME "the worker's node name"
  is_node_name "$JHUB_NODE_NAME" || die "JHUB_NODE_NAME '$JHUB_NODE_NAME' is not a valid node name"
  [ "$ACTION" = add ] || return 0
  require_env JHUB_NODE_ADDRESS "the worker's address on the cluster network"
  is_ip "$JHUB_NODE_ADDRESS" || die "JHUB_NODE_ADDRESS must be an IP address, got '$JHUB_NODE_ADDRESS'"
  require_uint JHUB_TOKEN_TTL 315360000
  [ "$JHUB_TOKEN_TTL" -gt "$TOKEN_MARGIN" ] || die "JHUB_TOKEN_TTL must be more than $TOKEN_MARGIN seconds, got $JHUB_TOKEN_TTL"
}

hosts_block() { printf 'jhub-node %s' "$JHUB_NODE_NAME"; }

# token_registered: the token is in MicroK8s's token files and valid for at least TOKEN_MARGIN more
# seconds. Compared in bash: the token never becomes a command argument here.
token_registered() {
  local line tok exp now
  now="$(date +%s)"
  if [ -f "$(mk8s_data /credentials/persistent-cluster-tokens.txt)" ]; then
    while IFS= read -r line; do
      [ "${line%%|*}" != "$JHUB_TOKEN_VALUE" ] || return 0
    done <"$(mk8s_data /credentials/persistent-cluster-tokens.txt)"
  fi
  [ -f "$(mk8s_data /credentials/cluster-tokens.txt)" ] || return 1
  while IFS= read -r line; do
    tok="${line%%|*}"
    # a token without "|expiry" is single-use: it does not count
    if [ "$tok" != "$JHUB_TOKEN_VALUE" ] || [ "$line" = "$tok" ]; then continue; fi
    exp="${line#*|}"
    if is_uint "$exp" && [ "$exp" -gt $((now + TOKEN_MARGIN)) ]; then return 0; fi
  done <"$(mk8s_data /credentials/cluster-tokens.txt)"
  return 1
}

ensure_token() {
  local out
  if token_registered; then
    log "join token already registered, skipping"
    return 0
  fi
  # add-node prints join commands that contain the token: keep them off stdout and out of the log
  if ! out="$(mk8s add-node --token "$JHUB_TOKEN_VALUE" --token-ttl "$JHUB_TOKEN_TTL" 2>&1)"; then
    die "microk8s add-node failed on $(uname -n): $(redact "$out")"
  fi
  log "join token registered for ${JHUB_TOKEN_TTL}s (valid for every worker's join)"
}

add() {
  read_token
  printf '%s %s\n' "$JHUB_NODE_ADDRESS" "$JHUB_NODE_NAME" | ensure_block "$(rootp /etc/hosts)" "$(hosts_block)"
  if [ "$JHUB_CHANGED" = 1 ]; then log "/etc/hosts: $JHUB_NODE_NAME -> $JHUB_NODE_ADDRESS"; else log "/etc/hosts already resolves $JHUB_NODE_NAME, skipping"; fi
  ensure_token
}

remove() {
  local out
  if out="$(kctl get node "$JHUB_NODE_NAME" -o name 2>&1)"; then
    mk8s remove-node "$JHUB_NODE_NAME" --force >&2 || die "microk8s remove-node $JHUB_NODE_NAME failed on $(uname -n)"
    log "removed node $JHUB_NODE_NAME from the cluster"
  elif [[ "$out" == *NotFound* || "$out" == *"not found"* ]]; then
    log "node $JHUB_NODE_NAME is not in the cluster, nothing to remove"
  else
    die "cannot ask the cluster about node $JHUB_NODE_NAME: $out"
  fi
  ensure_block "$(rootp /etc/hosts)" "$(hosts_block)" </dev/null
  if [ "$JHUB_CHANGED" = 1 ]; then log "/etc/hosts: dropped $JHUB_NODE_NAME"; fi
}

main() {
  ACTION="${1:-}"
  validate
  "$ACTION"
}

main "$@"
