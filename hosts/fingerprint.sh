#!/usr/bin/env bash
# fingerprint.sh (control plane): print the fingerprint a joining worker checks the cluster agent by.
#
# Env: none.
# stdin: not read.
# stdout: the fingerprint, one line: the first 12 hex digits of the sha256 of the DER form of MicroK8s's
#   certs/server.crt, the certificate its cluster agent (port 25000) serves. `microk8s add-node` prints
#   the same value as the last part of `<ip>:25000/<token>/<fingerprint>`; with it `microk8s join`
#   refuses a server whose certificate differs, so the token goes to this control plane only.
# State: none; it only reads /var/snap/microk8s/current/certs/server.crt.
set -euo pipefail
if [ -z "${JHUB_LIB_LOADED:-}" ]; then
  # shellcheck source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

validate() {
  CERT="$(mk8s_data /certs/server.crt)"
  [ -f "$CERT" ] || die "$(unrootp "$CERT") is missing on $(uname -n); is MicroK8s installed and started?"
  grep -q -- '-----BEGIN CERTIFICATE-----' "$CERT" || die "$(unrootp "$CERT") on $(uname -n) holds no PEM certificate"
}

# the first certificate of the PEM file, decoded to DER (base64 -d of its body), hashed
fingerprint() {
  awk '/-----BEGIN CERTIFICATE-----/ { on = 1; next } /-----END CERTIFICATE-----/ { if (on) exit } on { print }' "$CERT" |
    base64 -d | sha256sum | cut -c1-12
}

main() {
  local fp
  validate
  fp="$(fingerprint)"
  [[ "$fp" =~ ^[0-9a-f]{12}$ ]] || die "cannot compute the fingerprint of $(unrootp "$CERT") on $(uname -n)"
  printf '%s\n' "$fp"
  log "cluster agent certificate fingerprint $fp (from $(unrootp "$CERT"))"
}

main "$@"
