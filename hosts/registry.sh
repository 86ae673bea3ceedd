#!/usr/bin/env bash
# registry.sh: point containerd (inside MicroK8s) at a site registry mirror, e.g. a Harbor proxy cache,
# with one hosts.toml per upstream registry under /var/snap/microk8s/current/args/certs.d/<upstream>/.
#
# Env:
#   JHUB_REGISTRY_MIRROR     optional; the mirror's URL, e.g. https://harbor.lab.local. Empty: no mirror,
#                            every jhub-managed upstream directory is removed.
#   JHUB_REGISTRY_UPSTREAMS  newline-separated "upstream [path]" lines, e.g. "docker.io /v2/dockerhub-proxy".
#                            With a path (a Harbor proxy-cache project) pulls go to <mirror><path> with
#                            override_path = true; without one to <mirror> itself.
#   JHUB_REGISTRY_CA         optional; PEM text of the CA that signed the mirror's certificate.
#   JHUB_BUILD_REGISTRY      optional; host[:port] of jhub:offline.buildRegistry, where the images jhub
#                            builds are pulled from directly. With JHUB_REGISTRY_CA, its hosts.toml trusts
#                            that CA (without one, containerd trusts the system's CAs: no file is needed).
# stdin: not read. stdout: nothing.
# A directory jhub did not write (MicroK8s ships one for docker.io) is saved under
# /var/lib/jhub/registry/original/ before jhub takes it over, and put back when the upstream is dropped.
# containerd is restarted only when something changed.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

MARK="$REGISTRY_MARK"
# containerd's view of the directory (file contents never carry JHUB_ROOT)
CERTS_D_HOST=/var/snap/microk8s/current/args/certs.d
UPSTREAMS=() PATHS=() DIRECT=""
CHANGES=0

validate() {
  local line n=0 up path
  if [ -n "${JHUB_REGISTRY_MIRROR:-}" ]; then
    [[ "$JHUB_REGISTRY_MIRROR" =~ ^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$ ]] ||
      die "JHUB_REGISTRY_MIRROR must be a URL like https://harbor.lab.local, got '$JHUB_REGISTRY_MIRROR'"
    JHUB_REGISTRY_MIRROR="${JHUB_REGISTRY_MIRROR%/}"
  fi
  if [ -n "${JHUB_REGISTRY_CA:-}" ]; then
    [[ "$JHUB_REGISTRY_CA" == *"-----BEGIN CERTIFICATE-----"*"-----END CERTIFICATE-----"* ]] ||
      die "JHUB_REGISTRY_CA must be PEM text (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"
  fi
  while IFS= read -r line; do
    n=$((n + 1))
    [ -n "${line// /}" ] || continue
    read -r up path _ <<<"$line"
    if ! [[ "$up" =~ ^[A-Za-z0-9.-]+(:[0-9]{1,5})?$ ]] || ! is_hostname "${up%:*}"; then
      die "JHUB_REGISTRY_UPSTREAMS line $n: '$up' is not a registry host name (like docker.io or quay.io)"
    fi
    [ -z "${path:-}" ] || [[ "$path" =~ ^/[A-Za-z0-9._~/-]*$ ]] ||
      die "JHUB_REGISTRY_UPSTREAMS line $n: path '$path' must start with / (like /v2/dockerhub-proxy)"
    UPSTREAMS+=("$up") PATHS+=("${path:-}")
  done <<<"${JHUB_REGISTRY_UPSTREAMS:-}"
  if [ -z "${JHUB_REGISTRY_MIRROR:-}" ] && [ "${#UPSTREAMS[@]}" -gt 0 ]; then
    die "JHUB_REGISTRY_UPSTREAMS is set but JHUB_REGISTRY_MIRROR is empty; set the mirror URL"
  fi
  DIRECT="${JHUB_BUILD_REGISTRY:-}"
  if [ -n "$DIRECT" ]; then
    if ! [[ "$DIRECT" =~ ^[a-z0-9.-]+(:[0-9]{1,5})?$ ]] || ! is_hostname "${DIRECT%:*}"; then
      die "JHUB_BUILD_REGISTRY must be a registry host name (like harbor.lab.local), got '$DIRECT'"
    fi
    for up in "${UPSTREAMS[@]}"; do
      [ "$up" != "$DIRECT" ] || DIRECT=""  # mirrored already: the upstream's file serves it
    done
    [ -n "${JHUB_REGISTRY_CA:-}" ] || DIRECT=""
  fi
}

certs_d() { mk8s_data /args/certs.d; }
original_dir() { state_dir "/registry/original/$1"; }
is_managed() { [ -f "$1/hosts.toml" ] && [ "$(head -n 1 "$1/hosts.toml")" = "$MARK" ]; }

hosts_toml() {
  local up="$1" path="$2" server="https://$1"
  # containerd knows docker.io's real endpoint; MicroK8s's own file uses this server line too
  [ "$up" != docker.io ] || server="https://docker.io"
  printf '%s\n' "$MARK"
  printf 'server = "%s"\n\n' "$server"
  printf '[host."%s%s"]\n' "$JHUB_REGISTRY_MIRROR" "$path"
  printf '  capabilities = ["pull", "resolve"]\n'
  # Harbor proxy-cache projects live under /v2/<project>: containerd must not add /v2 itself
  [ -z "$path" ] || printf '  override_path = true\n'
  [ -z "${JHUB_REGISTRY_CA:-}" ] || printf '  ca = "%s/%s/ca.crt"\n' "$CERTS_D_HOST" "$up"
}

# the build registry, pulled from directly, with the site's CA
direct_toml() {
  printf '%s\n' "$MARK"
  printf 'server = "https://%s"\n\n' "$1"
  printf '[host."https://%s"]\n' "$1"
  printf '  capabilities = ["pull", "resolve"]\n'
  printf '  ca = "%s/%s/ca.crt"\n' "$CERTS_D_HOST" "$1"
}

ensure_upstream() {
  local up="$1" path="$2" dir
  dir="$(certs_d)/$up"
  if [ -f "$dir/hosts.toml" ] && ! is_managed "$dir" && [ ! -e "$(original_dir "$up")" ]; then
    mkdir -p -- "$(original_dir "$up")"
    cp -a -- "$dir/." "$(original_dir "$up")/"
    log "saved the original $CERTS_D_HOST/$up to /var/lib/jhub/registry/original/$up"
  fi
  if [ "${3:-}" = direct ]; then
    direct_toml "$up" | ensure_file "$dir/hosts.toml" 644
  else
    hosts_toml "$up" "$path" | ensure_file "$dir/hosts.toml" 644
  fi
  local wrote="$JHUB_CHANGED"
  if [ -n "${JHUB_REGISTRY_CA:-}" ]; then
    printf '%s\n' "$JHUB_REGISTRY_CA" | ensure_file "$dir/ca.crt" 644
  else
    ensure_absent "$dir/ca.crt"
  fi
  local where="$JHUB_REGISTRY_MIRROR$path"
  [ "${3:-}" != direct ] || where="https://$up itself, trusting the site CA"
  if [ "$wrote" = 1 ] || [ "$JHUB_CHANGED" = 1 ]; then
    CHANGES=$((CHANGES + 1))
    log "$up: pulls now go to $where"
  else
    log "$up: already mirrored to $where, skipping"
  fi
}

# drop jhub-managed upstream directories that are no longer configured (put originals back)
remove_stale() {
  local dir up u keep
  for dir in "$(certs_d)"/*/; do
    dir="${dir%/}"
    if [ ! -d "$dir" ] || ! is_managed "$dir"; then continue; fi
    up="$(basename -- "$dir")" keep=0
    for u in "${UPSTREAMS[@]}" "$DIRECT"; do [ "$u" != "$up" ] || keep=1; done
    [ "$keep" = 0 ] || continue
    rm -rf -- "$dir"
    if [ -d "$(original_dir "$up")" ]; then
      cp -a -- "$(original_dir "$up")" "$dir"
      rm -rf -- "$(original_dir "$up")"
      log "$up: no longer mirrored; restored the original hosts.toml"
    else
      log "$up: no longer mirrored; removed $CERTS_D_HOST/$up"
    fi
    CHANGES=$((CHANGES + 1))
  done
}

main() {
  local i
  validate
  [ -d "$(mk8s_data /args)" ] || die "MicroK8s is not installed on $(uname -n) ($CERTS_D_HOST is missing); run install first"
  for i in "${!UPSTREAMS[@]}"; do ensure_upstream "${UPSTREAMS[$i]}" "${PATHS[$i]}"; done
  [ -z "$DIRECT" ] || ensure_upstream "$DIRECT" "" direct
  remove_stale
  if [ "$CHANGES" -gt 0 ]; then
    snapc restart microk8s.daemon-containerd >/dev/null
    log "restarted containerd ($CHANGES registry change(s))"
  else
    log "registry configuration unchanged"
  fi
}

main "$@"
