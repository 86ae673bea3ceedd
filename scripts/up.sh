#!/usr/bin/env bash
# The one-node trial: `pulumi up` of Pulumi.dev.yaml on THIS machine, with state in ./.pulumi (a local file
# backend, no cloud account). Needs Ubuntu 22.04/24.04, root or passwordless sudo, and the internet (the dev
# stack is `online`; air-gapped sites follow README "Deploy offline"). Extra arguments go to `pulumi up`.
set -euo pipefail
cd "$(dirname "$0")/.."
PULUMI_VERSION=3.272.0   # the CLI release that matches the pulumi SDK pinned in requirements.txt

say() { printf 'up.sh: %s\n' "$*" >&2; }

# 1. The Pulumi CLI: on PATH, in ~/.pulumi/bin, or installed there by Pulumi's own installer.
export PATH="$HOME/.pulumi/bin:$PATH"
if ! command -v pulumi >/dev/null 2>&1; then
  say "installing the Pulumi CLI $PULUMI_VERSION into ~/.pulumi"
  curl -fsSL https://get.pulumi.com | sh -s -- --version "$PULUMI_VERSION"
fi

# 2. The program's Python environment (Pulumi.yaml points at .venv).
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt

# 3. Local state and a passphrase for the stack's secrets, kept outside the repository.
mkdir -p .pulumi
pulumi login --non-interactive "file://$PWD/.pulumi" >/dev/null
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  passfile="${XDG_CONFIG_HOME:-$HOME/.config}/jhub/dev.passphrase"
  if [ ! -s "$passfile" ]; then
    mkdir -p "$(dirname "$passfile")"
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$passfile")
    say "created a passphrase for the dev stack's secrets in $passfile (keep it)"
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE="$passfile"
fi
pulumi stack select --create dev --non-interactive >/dev/null

# 4. MicroK8s names the node after the machine's hostname; the dev stack must use the same name.
host="$(hostname | tr '[:upper:]' '[:lower:]')"
current="$(pulumi config get --path 'jhub:nodes[0].name' 2>/dev/null || true)"
if [ "$current" != "$host" ]; then
  say "setting jhub:nodes[0].name to this machine's hostname \"$host\" (was \"$current\")"
  pulumi config set --path 'jhub:nodes[0].name' "$host"
fi

exec pulumi up --yes "$@"
