#!/usr/bin/env bash
# Re-sign the demo policy pack (assets/demo-pack/) from assets/demo/pack-source.toml with a
# fresh, throwaway demo admin key: writes its public key to assets/trusted-keys/demo-admin.pub
# and deletes the secret key, so nobody holds a key that demo builds trust.
# Run it after changing the demo pack's sources (raise [pack] version in pack-source.toml);
# the next build bundles the new public key.
#
# Usage: scripts/demo-pack.sh            (builds the CLI first)
#        COUNTERSIGN_BIN=path/to/countersign scripts/demo-pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${COUNTERSIGN_BIN:-}"
if [ -z "$bin" ]; then
  cargo build -q --locked -p countersign
  bin="${CARGO_TARGET_DIR:-target}/debug/countersign"
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bin" admin keygen --out "$tmp/demo.key" --pub "$tmp/demo-admin.pub" \
  --label "DEMO ONLY (secret discarded when the demo pack was signed)"
rm -rf assets/demo-pack
"$bin" policy sign assets/demo/pack-source.toml --out assets/demo-pack --key "$tmp/demo.key"
mkdir -p assets/trusted-keys
{
  echo "# DEMO ONLY: the key that signed assets/demo-pack/. Its secret half was deleted right"
  echo "# after signing (scripts/demo-pack.sh). An organisation replaces this directory with its"
  echo "# own admin public keys before building installers (see README, For admins)."
  cat "$tmp/demo-admin.pub"
} > assets/trusted-keys/demo-admin.pub
echo "demo pack re-signed; trusted key: $(tail -n 1 assets/trusted-keys/demo-admin.pub)"
