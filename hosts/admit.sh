#!/usr/bin/env bash
# admit.sh add|revoke|remove (control plane, per worker): let a worker in, close the door behind it, or
# take it out.
#
# Env:
#   JHUB_NODE_NAME     required; the worker's node name
#   JHUB_NODE_ADDRESS  add: required; the worker's address on the cluster network
#   JHUB_TOKEN_TTL     add: optional, seconds the worker's join token stays valid at most (default 172800;
#                      more than 86400). The component passes years: the token is revoked once the join
#                      succeeded, so the expiry is only a backstop
#   JHUB_JOIN_ID       optional; the worker's reset id (empty: none). It changes whenever the worker's
#                      join runs again for a reset, so that this admit runs with it and registers the
#                      token again. Only logged.
#   JHUB_JOIN_STEP     optional; a digest of the worker's join command (16 hex digits). It changes
#                      whenever that join runs again for a change, so that this admit runs before it
#                      (and the revoke after it). Not used otherwise.
# stdin (add, revoke): line 1 is the worker's join token (32+ letters and digits). It is never logged and
#   reaches no command line and no environment: only bash builtins handle it (its sha256 is taken by
#   sha256sum reading a pipe).
# stdout: nothing.
#
# add: the worker gets its own block in this host's /etc/hosts (so the control plane resolves it), and
#   its token is registered in MicroK8s's credentials/cluster-tokens.txt as "<token>|<unix expiry>",
#   the line `microk8s add-node --token <t> --token-ttl <ttl>` would write (jhub writes it itself, so
#   the token never shows in `ps`). It is (re)registered when missing or valid for less than a day:
#   earlier lines for the same token go first (the cluster agent takes the first matching line, so a
#   stale expired line would refuse every join). The token's sha256 is kept in
#   /var/lib/jhub/join-tokens/<name>.sha256, so `remove` finds its line without the token. The file keeps
#   its owner, group and mode (0600 when jhub creates it); it is replaced atomically. The /etc/hosts edit
#   and the token check-and-write happen under a lock (/var/lib/jhub/admit.lock), since admits of
#   different workers run in parallel; a worker's hosts block is rewritten on every add, so an entry lost
#   meanwhile is repaired. A token with an expiry is not consumed by a join: a join that failed and is
#   retried on a later `pulumi up` (days later: Pulumi runs the failed create again, not this admit)
#   still finds it. A token in persistent-cluster-tokens.txt never expires and is left alone.
# revoke: after the worker's join succeeded, its token's lines go from cluster-tokens.txt (and its record):
#   no one joins with it any more.
# remove: `microk8s remove-node <name> --force` when the cluster knows the node, its hosts block goes, and
#   so does any line of its token (found by the recorded sha256).
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# re-register when less than a day of validity is left
TOKEN_MARGIN=86400

validate() {
  case "${ACTION:-}" in
  add | revoke | remove) ;;
  *) die "usage: admit.sh add|revoke|remove (got '${ACTION:-}')" ;;
  esac
  require_env JHUB_NODE_NAME "the worker's node name"
  is_node_name "$JHUB_NODE_NAME" || die "JHUB_NODE_NAME '$JHUB_NODE_NAME' is not a valid node name"
  [[ "${JHUB_JOIN_ID:-}" =~ ^[A-Za-z0-9._:@+-]{0,128}$ ]] ||
    die "JHUB_JOIN_ID must be the worker's reset id (letters, digits, '.', '_', ':', '@', '+', '-'), got '${JHUB_JOIN_ID:-}'"
  [[ "${JHUB_JOIN_STEP:-}" =~ ^([0-9a-f]{16})?$ ]] ||
    die "JHUB_JOIN_STEP must be the digest of the worker's join command (16 hex digits), got '${JHUB_JOIN_STEP:-}'"
  [ "$ACTION" = add ] || return 0
  require_env JHUB_NODE_ADDRESS "the worker's address on the cluster network"
  is_ip "$JHUB_NODE_ADDRESS" || die "JHUB_NODE_ADDRESS must be an IP address, got '$JHUB_NODE_ADDRESS'"
  require_uint JHUB_TOKEN_TTL 172800
  [ "$JHUB_TOKEN_TTL" -gt "$TOKEN_MARGIN" ] || die "JHUB_TOKEN_TTL must be more than $TOKEN_MARGIN seconds, got $JHUB_TOKEN_TTL"
}

hosts_block() { printf 'jhub-node %s' "$JHUB_NODE_NAME"; }

tokens_file() { mk8s_data /credentials/cluster-tokens.txt; }

# token_registered: the token is in MicroK8s's token files and valid for at least TOKEN_MARGIN more
# seconds. Compared in bash: the token never becomes a command argument here.
token_registered() {
  local line tok exp now
  now="$(date +%s)"
  if [ -f "$(mk8s_data /credentials/persistent-cluster-tokens.txt)" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      [ "${line%%|*}" != "$JHUB_TOKEN_VALUE" ] || return 0
    done <"$(mk8s_data /credentials/persistent-cluster-tokens.txt)"
  fi
  [ -f "$(tokens_file)" ] || return 1
  while IFS= read -r line || [ -n "$line" ]; do
    tok="${line%%|*}"
    [ "$tok" = "$JHUB_TOKEN_VALUE" ] || continue
    # the first line for the token is the one the cluster agent reads; one without "|expiry" is
    # single-use and does not count
    [ "$line" != "$tok" ] || return 1
    exp="${line#*|}"
    is_uint "$exp" && [ "$exp" -gt $((now + TOKEN_MARGIN)) ]
    return
  done <"$(tokens_file)"
  return 1
}

# token_record: the sha256 of the worker's token, so `remove` finds its lines without it
token_record() { state_dir "/join-tokens/$JHUB_NODE_NAME.sha256"; }
# token_sha TOKEN: its sha256; the token goes through a pipe, never an argument
token_sha() { printf '%s' "$1" | sha256sum | awk '{ print $1 }'; }

# rewrite_tokens DROP_SHA [EXPIRY]: the tokens file without any line whose token has the sha256 DROP_SHA,
# then, with EXPIRY, "<JHUB_TOKEN_VALUE>|EXPIRY". Only builtins see the token; the new file replaces the
# old one atomically with its owner, group and mode. Sets JHUB_CHANGED.
rewrite_tokens() {
  local file tmp line dropped=0
  file="$(tokens_file)"
  [ -d "$(dirname -- "$file")" ] || die "$(unrootp "$(dirname -- "$file")") is missing on $(uname -n); is MicroK8s installed?"
  JHUB_CHANGED=0
  [ -f "$file" ] || [ -n "${2:-}" ] || return 0
  tmp="$(mktemp "$file.jhub-XXXXXX")" # 0600: no one else can read the token meanwhile
  {
    if [ -f "$file" ]; then
      while IFS= read -r line || [ -n "$line" ]; do
        if [ "$(token_sha "${line%%|*}")" = "$1" ]; then
          dropped=1
        else
          printf '%s\n' "$line"
        fi
      done <"$file"
    fi
    [ -z "${2:-}" ] || printf '%s|%s\n' "$JHUB_TOKEN_VALUE" "$2"
  } >"$tmp"
  if [ -z "${2:-}" ] && [ "$dropped" = 0 ]; then
    rm -f -- "$tmp"
    return 0
  fi
  if [ -f "$file" ]; then
    chown --reference="$file" -- "$tmp"
    chmod --reference="$file" -- "$tmp"
  fi
  mv -f -- "$tmp" "$file"
  JHUB_CHANGED=1
}

# take_lock: admits of different workers run in parallel; /etc/hosts and the tokens file are read,
# changed and replaced as a whole, so every edit of them happens under /var/lib/jhub/admit.lock
take_lock() {
  mkdir -p -- "$(state_dir)"
  exec 9>"$(state_dir /admit.lock)"
  flock -w 60 9 || die "another admit.sh holds /var/lib/jhub/admit.lock on $(uname -n) for over 60s"
}

ensure_token() {
  local expiry
  if token_registered; then
    log "join token of $JHUB_NODE_NAME already registered for more than a day, skipping"
  else
    expiry=$(($(date +%s) + JHUB_TOKEN_TTL))
    rewrite_tokens "$(token_sha "$JHUB_TOKEN_VALUE")" "$expiry"
    log "join token of $JHUB_NODE_NAME registered in credentials/cluster-tokens.txt until $(date -u -d "@$expiry" +%Y-%m-%dT%H:%M:%SZ) or its join (then revoked)"
  fi
  token_sha "$JHUB_TOKEN_VALUE" | ensure_file "$(token_record)" 600
}

add() {
  read_token
  [ -z "${JHUB_JOIN_ID:-}" ] || log "admitting $JHUB_NODE_NAME for its join with reset '$JHUB_JOIN_ID'"
  take_lock
  # the whole block is written on every run, so an entry lost since the last admit comes back
  printf '%s %s\n' "$JHUB_NODE_ADDRESS" "$JHUB_NODE_NAME" | ensure_block "$(rootp /etc/hosts)" "$(hosts_block)"
  if [ "$JHUB_CHANGED" = 1 ]; then log "/etc/hosts: $JHUB_NODE_NAME -> $JHUB_NODE_ADDRESS"; else log "/etc/hosts already resolves $JHUB_NODE_NAME, skipping"; fi
  ensure_token
}

# drop_token SHA: the token with that sha256 can no longer join; its record goes
drop_token() {
  rewrite_tokens "$1"
  if [ "$JHUB_CHANGED" = 1 ]; then
    log "join token of $JHUB_NODE_NAME revoked (removed from credentials/cluster-tokens.txt)"
  else
    log "join token of $JHUB_NODE_NAME is not registered, nothing to revoke"
  fi
  ensure_absent "$(token_record)"
}

revoke() {
  read_token
  take_lock
  drop_token "$(token_sha "$JHUB_TOKEN_VALUE")"
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
  take_lock
  ensure_block "$(rootp /etc/hosts)" "$(hosts_block)" </dev/null
  if [ "$JHUB_CHANGED" = 1 ]; then log "/etc/hosts: dropped $JHUB_NODE_NAME"; fi
  if [ -f "$(token_record)" ]; then drop_token "$(head -n 1 "$(token_record)")"; fi
}

main() {
  ACTION="${1:-}"
  validate
  "$ACTION"
}

main "$@"
