#!/usr/bin/env bash
# Make a signed release directory: the artifacts (installers, updater bundles and their
# .sig files, the countersign CLI), SHA256SUMS over all of them and SHA256SUMS.sig, an
# ed25519 signature of the sums by an admin key; then check it as an agent's machine would
# (`countersign admin verify-release`).
#
# Usage:
#   scripts/release.sh --out DIR (--key FILE | --key-name NAME) [--trust PUBFILE]
#                      [--bin COUNTERSIGN] [ARTIFACT...]
#
#   ARTIFACT...   files to ship; default: every .deb/.rpm/.AppImage/.msi/.exe/.dmg/.app.tar.gz
#                 (and their updater .sig) under $CARGO_TARGET_DIR/release/bundle, where
#                 `npx tauri build` puts them, plus the countersign CLI
#   --bin         a countersign binary to use (default: build it with cargo --release)
#   --key FILE    the admin secret key file (`countersign admin keygen --out FILE`)
#   --key-name N  the admin key in the OS keyring (`countersign admin keygen --name N`)
#   --trust FILE  also trust this public key when checking (before it is bundled)
set -euo pipefail
cd "$(dirname "$0")/.."

out="" bin="" keyargs=() trust=() artifacts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --key) keyargs=(--key "$2"); shift 2 ;;
    --key-name) keyargs=(--key-name "$2"); shift 2 ;;
    --trust) trust+=(--trust "$2"); shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "release: unknown option $1" >&2; exit 2 ;;
    *) artifacts+=("$1"); shift ;;
  esac
done
if [ -z "$out" ] || [ ${#keyargs[@]} -eq 0 ]; then
  echo "release: --out DIR and --key FILE (or --key-name NAME) are required" >&2
  exit 2
fi
target="${CARGO_TARGET_DIR:-target}"
if [ -z "$bin" ]; then
  cargo build --release --locked -p countersign
  bin="$target/release/countersign"
fi
if [ ${#artifacts[@]} -eq 0 ]; then
  if [ -d "$target/release/bundle" ]; then
    while IFS= read -r -d '' f; do artifacts+=("$f"); done < <(
      find "$target/release/bundle" -type f \( -name '*.deb' -o -name '*.rpm' -o -name '*.AppImage' \
        -o -name '*.msi' -o -name '*.exe' -o -name '*.dmg' -o -name '*.app.tar.gz' -o -name '*.sig' \) -print0)
  fi
  artifacts+=("$bin")
fi
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "release: $out is not empty" >&2
  exit 1
fi
mkdir -p "$out"
for f in "${artifacts[@]}"; do
  name="$(basename "$f")"
  if [ -e "$out/$name" ]; then
    echo "release: two artifacts are named $name" >&2
    exit 1
  fi
  cp -- "$f" "$out/$name"
done
"$bin" admin sign-release "$out" "${keyargs[@]}"
"$bin" admin verify-release "$out" "${trust[@]}"
echo "release: $out is signed; agents check it with: countersign admin verify-release $out"
