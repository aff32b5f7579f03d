#!/usr/bin/env bash
# Train the learned escalation-signal model (scripts/signals/train.py) in a virtual
# environment with the pinned scikit-learn; then re-pin its hash in the policy.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${COUNTERSIGN_SIGNALS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/countersign/signals-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/signals/requirements.txt"
cd "$root"
"$venv/bin/python" scripts/signals/train.py "$@"
