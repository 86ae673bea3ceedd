#!/usr/bin/env bash
# kubeconfig.sh (control plane): print MicroK8s's admin kubeconfig with the API server address that
# the admin machine reaches.
#
# Env:
#   JHUB_SERVER_ADDRESS  required; the control plane's address (IP or DNS name)
#   JHUB_API_PORT        optional (default 16443)
# stdin: not read.
# stdout: the kubeconfig (YAML) with every cluster's server set to https://<address>:<port>; nothing else.
# The kubeconfig holds admin credentials: the caller keeps it secret. Nothing is written on the host.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

main() {
  local server config
  require_env JHUB_SERVER_ADDRESS "the control plane's address"
  JHUB_API_PORT="${JHUB_API_PORT:-16443}"
  if ! is_uint "$JHUB_API_PORT" || [ "$JHUB_API_PORT" -lt 1 ] || [ "$JHUB_API_PORT" -gt 65535 ]; then
    die "JHUB_API_PORT must be a port number, got '$JHUB_API_PORT'"
  fi
  if is_ipv6 "$JHUB_SERVER_ADDRESS"; then
    server="https://[$JHUB_SERVER_ADDRESS]:$JHUB_API_PORT"
  elif is_ipv4 "$JHUB_SERVER_ADDRESS" || is_hostname "$JHUB_SERVER_ADDRESS"; then
    server="https://$JHUB_SERVER_ADDRESS:$JHUB_API_PORT"
  else
    die "JHUB_SERVER_ADDRESS must be an IP address or DNS name, got '$JHUB_SERVER_ADDRESS'"
  fi
  config="$(mk8s config 2>/dev/null)" || die "'microk8s config' failed on $(uname -n); is microk8s running?"
  grep -q '^[[:space:]]*server:' <<<"$config" || die "'microk8s config' on $(uname -n) printed no server line"
  sed -E "s#^([[:space:]]*server:[[:space:]]*).*#\\1$server#" <<<"$config"
  log "kubeconfig printed with server $server"
}

main "$@"
