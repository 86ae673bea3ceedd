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
if [ "$(id -u)" != 0 ] && ! sudo -n true 2>/dev/null; then
  say "the host steps need root: run as root or give this user passwordless sudo"; exit 1
fi
if [ ! -x .venv/bin/python ] && ! python3 -m venv .venv 2>/dev/null; then
  say "python3-venv is missing; installing it"
  rm -rf .venv
  S=; [ "$(id -u)" = 0 ] || S="sudo -n"
  $S apt-get update -qq && $S apt-get install -y -qq python3-venv >/dev/null
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
# The dev stack deploys the portal and offers the cpu notebook image, which `pulumi up` builds here (no
# public registry holds them) with the bundle's builder: buildah or podman, or docker buildx where it can
# export OCI images (not the default docker driver); buildah (Ubuntu's universe) is installed when neither
# buildah nor podman is there.
if ! command -v podman >/dev/null 2>&1 && ! command -v buildah >/dev/null 2>&1; then
  say "no image builder (buildah, podman) for the portal and notebook images; installing buildah"
  S=; [ "$(id -u)" = 0 ] || S="sudo -n"
  $S apt-get update -qq && $S apt-get install -y -qq buildah >/dev/null
fi

# 3. Local state and a passphrase for the stack's secrets, kept outside the repository.
mkdir -p .pulumi
export PULUMI_BACKEND_URL="file://$PWD/.pulumi"   # this project only; the user's own login is untouched
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

# The dev stack's node has no name: a `host: local` node is named after this machine's hostname.
pulumi up --yes "$@"
cat >&2 <<EOF
up.sh: done. For later pulumi commands in a new shell (stack outputs, destroy):
  cd $PWD && export PATH="\$HOME/.pulumi/bin:\$PATH" PULUMI_BACKEND_URL="$PULUMI_BACKEND_URL" \\
    PULUMI_CONFIG_PASSPHRASE_FILE="${PULUMI_CONFIG_PASSPHRASE_FILE:-}"
  pulumi stack output hubUrl
  pulumi stack output hubAdminPasswords --show-secrets   # the admin's first password
  pulumi destroy
EOF
