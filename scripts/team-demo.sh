#!/usr/bin/env bash
# A team on one machine (`bash scripts/run.sh team`): a local NATS server with JetStream,
# the team service (its lease), and two desktops enrolled in the team, an agent's and a
# lead's, each with its own keys (its own OS keyring namespace) and data folder. With a
# display it opens both apps; a pause the lead sets on the Pause screen stops the
# agent's desk too. Without one it shows the same from the command line.
# The team is kept in $COUNTERSIGN_TEAM_DEMO (default: countersign-team-demo in the user
# data dir) and reused by later runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
repo="$(pwd)"
target="${CARGO_TARGET_DIR:-target}"
display=0
if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then display=1; fi
packages=(-p countersign -p countersign-team)
if [ "$display" = 1 ]; then
  (cd ui && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build)
  packages+=(-p countersign-desktop)
fi
# COUNTERSIGN_TEAM_DEMO_PROFILE=debug uses a debug build (faster to build, for a try-out).
profile="${COUNTERSIGN_TEAM_DEMO_PROFILE:-release}"
if [ "$profile" = release ]; then
  cargo build --release --locked "${packages[@]}"
else
  cargo build --locked "${packages[@]}"
fi
bin="$target/$profile"
nats="${XDG_CACHE_HOME:-$HOME/.cache}/countersign/nats-server-2.15.1/bin/nats-server"
root="${COUNTERSIGN_TEAM_DEMO:-${XDG_DATA_HOME:-$HOME/.local/share}/countersign-team-demo}"
port="${COUNTERSIGN_TEAM_PORT:-4233}"
mkdir -p "$root"

# `cs DESK ARGS…`: the command line as one desk (its keyring namespace, workspace, data).
cs() {
  local desk="$1"
  shift
  COUNTERSIGN_KEYRING_SERVICE="countersign-team-demo-$desk" "$bin/countersign" \
    --workspace "$root/$desk.toml" --data-dir "$root/$desk" "$@"
}

# The demo policy with `[team]`: every desk running it belongs to demo-team, takes only an
# enrolment its signer made for the desk's own key, and is cut off (not solo) without one.
# Written again at every run from the repository's policy.
team_policy() {
  local keys name signer service_key
  # team.toml's own lines before its first table (any Python 3; tomllib needs 3.11).
  keys=$(python3 - "$root/team/team.toml" <<'PY'
import re, sys
top = {}
for line in open(sys.argv[1]):
    if line.startswith("["):
        break
    m = re.match(r'([a-z_]+) = "([^"]*)"$', line.strip())
    if m:
        top[m.group(1)] = m.group(2)
print(top["name"], top["signer"], top["service_key"])
PY
)
  read -r name signer service_key <<< "$keys"
  { cat assets/demo/policy.toml
    printf '\n# Added by scripts/team-demo.sh: the team every desk running this policy belongs to.\n'
    printf '[team]\nname = "%s"\nsigner = "%s"\nservice_key = "%s"\n' "$name" "$signer" "$service_key"
  } > "$root/policy.toml.new"
  mv "$root/policy.toml.new" "$root/policy.toml"
}

# A copy of the demo workspace for a desk: absolute paths, the team's policy, its
# operator, and the lead's device key on the roster (what makes the lead's pauses count
# on every desk). The roster line is edited before the operator's (sed applies the
# expressions in order to each line).
workspace() {
  local desk="$1" operator="$2" role="$3" lead_key="$4"
  sed -e "s#^policy = \".*\"#policy = \"$root/policy.toml\"#" \
      -e "s#^knowledge = \"#knowledge = \"$repo/assets/demo/#" \
      -e "s#^cases = \"#cases = \"$repo/assets/demo/#" \
      -e "s#^catalog = \"#catalog = \"$repo/assets/demo/#" \
      -e "s#^seed = \"#seed = \"$repo/assets/demo/#" \
      -e "s#^buyers = \"#buyers = \"$repo/assets/demo/#" \
      -e "s#^id = \"lead-demo\"#id = \"lead-demo\"\nkey = \"$lead_key\"#" \
      -e "s#^id = \"agent-demo\"#id = \"$operator\"#" \
      -e "s#^role = \"agent\"#role = \"$role\"#" \
      assets/demo/workspace.toml > "$root/$desk.toml"
}

if [ ! -f "$root/team/team.toml" ]; then
  echo "team-demo: setting up team demo-team in $root"
  COUNTERSIGN_KEYRING_SERVICE=countersign-team-demo-admin "$bin/countersign" team init \
    --dir "$root/team" --name demo-team --port "$port"
  team_policy
  lead_key=$(COUNTERSIGN_KEYRING_SERVICE=countersign-team-demo-lead "$bin/countersign" --json team key \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["device_key"])')
  workspace lead lead-demo team_lead "$lead_key"
  workspace agent agent-demo agent "$lead_key"
  for desk in lead agent; do
    role=$([ "$desk" = lead ] && echo lead || echo agent)
    keys=$(cs "$desk" --json team key)
    key=$(echo "$keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["transport_key"])')
    device_key=$(echo "$keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["device_key"])')
    COUNTERSIGN_KEYRING_SERVICE=countersign-team-demo-admin "$bin/countersign" team enroll \
      --dir "$root/team" --device "$desk-desk" --role "$role" --key "$key" --device-key "$device_key" \
      --out "$root/$desk-enrollment.toml"
    cs "$desk" team join "$root/$desk-enrollment.toml"
  done
fi

# A team set up by an earlier version: its desks run the team's policy from now on.
team_policy
for desk in lead agent; do
  if [ -f "$root/$desk.toml" ]; then
    sed -i -e "s#^policy = \".*\"#policy = \"$root/policy.toml\"#" "$root/$desk.toml"
  fi
done

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
"$nats" -c "$root/team/nats-server.conf" -l "$root/nats-server.log" &
pids+=($!)
"$bin/countersign-team" serve --dir "$root/team" 2>> "$root/team-service.log" &
pids+=($!)
sleep 1

if [ "$display" = 1 ]; then
  for desk in lead agent; do
    COUNTERSIGN_KEYRING_SERVICE="countersign-team-demo-$desk" "$bin/countersign-desktop" \
      --workspace "$root/$desk.toml" --data-dir "$root/$desk" &
    pids+=($!)
  done
  echo "team-demo: the lead's and the agent's apps are open; close both to stop the team"
  wait "${pids[2]}" "${pids[3]}"
else
  echo "team-demo: no display; the same from the command line"
  cs agent team status
  cs lead pause set --scope action --value refund_partial --reason "team demo: refunds on hold"
  echo "team-demo: the agent's desk now has it:"
  cs agent pause list
fi
