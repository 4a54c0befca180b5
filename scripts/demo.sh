#!/usr/bin/env bash
# Sandstorm on one machine, end to end: control plane + edge agent + one sandboxed Python run.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/demo.sh [--keep] [--no-build] [--port N]
       scripts/demo.sh --stop

Sets up (Debian packages, npm ci) and builds (Release), starts the local control plane (Azurite-durable, state under .sandstorm/), enrols an edge
agent with a fresh enrollment token (config under .sandstorm/edge/), starts it, waits until it is live, then
submits a Python run with isolation "standard" through `sandstorm run` and prints the result: it executes in
a bubblewrap sandbox on the agent.

  --keep      leave the control plane and the agent running afterwards (stop them with --stop);
              by default both are stopped when the demo ends (SIGTERM: the agent drains, the host shuts down)
  --no-build  use the existing Release build
  --port N    control plane port (default 7071, or $SANDSTORM_DEMO_PORT)
  --stop      stop a control plane and agent left running by --keep

Started as root, the agent runs as root (cgroup limits). Started as an ordinary user, it is the zero-root agent:
bwrap in an unprivileged user namespace, runsc --rootless and rootless podman, with rlimits instead of cgroups
(the demo prints `sandstorm-edge check`, which says which limit is enforced how; docs/security.md lists what is
weaker). Its work root is then .sandstorm/edge/tmp/sandstorm, private to that user.

Needs: .NET 10 SDK, Node.js, curl; scripts/setup.sh (run first unless --no-build) installs the rest.
Logs: .sandstorm/logs/host.log and .sandstorm/logs/edge-agent.log.
USAGE
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE=".sandstorm"
LOGS="$STATE/logs"
PIDS="$STATE/demo.pids"
PORT="${SANDSTORM_DEMO_PORT:-7071}"
KEEP=0
BUILD=1
STOP_ONLY=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --no-build) BUILD=0 ;;
    --port) PORT="${2:?--port needs a value}"; shift ;;
    --stop) STOP_ONLY=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

URL="http://127.0.0.1:$PORT"
BIN="bin/Release/net10.0"
HOST_DLL="functions/Sandstorm.Local/$BIN/Sandstorm.Local.dll"
EDGE_DLL="edge/Sandstorm.Edge/$BIN/Sandstorm.Edge.dll"
CLI_DLL="tools/Sandstorm.Cli/$BIN/Sandstorm.Cli.dll"
EDGE_CONFIG="$STATE/edge/agent.json"

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# Stops one recorded process: SIGTERM, then SIGKILL if it has not exited after $2 seconds.
stop_pid() {
  local pid="$1" grace="$2" name="$3"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((grace * 5))); do
    kill -0 "$pid" 2>/dev/null || { echo "stopped $name ($pid)"; return 0; }
    sleep 0.2
  done
  echo "$name ($pid) did not stop in ${grace}s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

stop_all() {
  [[ -f "$PIDS" ]] || return 0
  # Agent first (it drains and delivers its results), then the control plane.
  local agent host
  agent="$(sed -n 's/^agent=//p' "$PIDS")"
  host="$(sed -n 's/^host=//p' "$PIDS")"
  [[ -n "$agent" ]] && stop_pid "$agent" 40 "edge agent"
  # The zero-root agent's rootless podman leaves its pause process (it holds podman's user namespace) behind.
  local pause="$STATE/edge/tmp/sandstorm/podman/xdg/libpod/tmp/pause.pid"
  [[ -s "$pause" ]] && stop_pid "$(cat "$pause")" 5 "rootless podman's pause process"
  [[ -n "$host" ]] && stop_pid "$host" 60 "control plane"
  rm -f "$PIDS"
}

if [[ $STOP_ONLY -eq 1 ]]; then
  stop_all
  exit 0
fi

command -v dotnet >/dev/null || die "dotnet (the .NET 10 SDK) is not on PATH"
command -v curl >/dev/null || die "curl is not installed"

if [[ $BUILD -eq 1 ]]; then
  say "set-up: Debian packages, npm ci, dotnet build (Release)"
  CONFIGURATION=Release scripts/setup.sh
fi
[[ -x node_modules/.bin/azurite ]] || die "Azurite is missing: run scripts/setup.sh (or npm ci) first"
command -v bwrap >/dev/null || die "bubblewrap is missing: run scripts/setup.sh (apt-get install bubblewrap runc runsc podman)"

# A demo left running by --keep holds the port and the state: stop it first.
stop_all
mkdir -p "$LOGS"
for dll in "$HOST_DLL" "$EDGE_DLL" "$CLI_DLL"; do
  [[ -f "$dll" ]] || die "$dll not found; run without --no-build"
done

if curl -sf "$URL/v1/health" >/dev/null 2>&1; then
  die "something already answers on $URL; pick another port with --port"
fi

cleanup() {
  local status=$?
  if [[ $KEEP -eq 0 || $status -ne 0 ]]; then
    say "stopping"
    stop_all
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting the control plane on $URL (Azurite-durable, state in $STATE/)"
dotnet "$HOST_DLL" --urls "$URL" --state "$STATE" >"$LOGS/host.log" 2>&1 &
echo "host=$!" >"$PIDS"

for i in $(seq 1 120); do
  curl -sf "$URL/v1/health" >/dev/null 2>&1 && [[ -s "$STATE/dev-api-key" ]] && break
  kill -0 "$(sed -n 's/^host=//p' "$PIDS")" 2>/dev/null || { tail -20 "$LOGS/host.log" >&2; die "the control plane exited"; }
  [[ $i -eq 120 ]] && { tail -20 "$LOGS/host.log" >&2; die "the control plane did not become healthy in 60 s"; }
  sleep 0.5
done
API_KEY="$(cat "$STATE/dev-api-key")"
echo "healthy; development API key in $STATE/dev-api-key"

say "creating an enrollment token (tenant of the dev API key, valid 15 minutes)"
TOKEN_JSON="$(curl -sf -X POST "$URL/v1/edge/enrollment-tokens" \
  -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' -d '{"ttlMinutes":15}')" \
  || die "could not create an enrollment token"
ENROLLMENT_TOKEN="$(printf '%s' "$TOKEN_JSON" | grep -o '"token":"[^"]*"' | cut -d'"' -f4)"
[[ -n "$ENROLLMENT_TOKEN" ]] || die "no token in: $TOKEN_JSON"
echo "token expires $(printf '%s' "$TOKEN_JSON" | grep -o '"expiresAt":"[^"]*"' | cut -d'"' -f4)"

say "enrolling the edge agent (sandstorm-edge init)"
# Each demo enrols afresh: a config from an earlier demo may belong to a control plane state that is gone.
# The token goes in through stdin: a command line is readable by every local user.
printf '%s\n' "$ENROLLMENT_TOKEN" | dotnet "$EDGE_DLL" init --control-plane "$URL" --enrollment-token-file - \
  --name "demo-$(hostname)" --label demo=true --config "$EDGE_CONFIG" --force

AGENT_ENV=()
if [[ "$(id -u)" -ne 0 ]]; then
  # The zero-root agent: this user's own work root (a /tmp/sandstorm of another user, root's say, would be refused).
  AGENT_TMP="$STATE/edge/tmp"
  mkdir -p "$AGENT_TMP"
  chmod 700 "$AGENT_TMP"
  AGENT_ENV=(env TMPDIR="$(cd "$AGENT_TMP" && pwd)")
  say "not root: the edge agent runs unprivileged as $(id -un) (zero-root); what it offers and how each limit holds"
  "${AGENT_ENV[@]}" dotnet "$EDGE_DLL" check || true
fi

say "starting the edge agent (sandstorm-edge start)"
"${AGENT_ENV[@]}" dotnet "$EDGE_DLL" start --config "$EDGE_CONFIG" >"$LOGS/edge-agent.log" 2>&1 &
echo "agent=$!" >>"$PIDS"

for i in $(seq 1 120); do
  curl -sf "$URL/v1/providers" -H "Authorization: Bearer $API_KEY" | grep -q '"provider":"edge"' && break
  kill -0 "$(sed -n 's/^agent=//p' "$PIDS")" 2>/dev/null || { cat "$LOGS/edge-agent.log" >&2; die "the edge agent exited"; }
  [[ $i -eq 120 ]] && { cat "$LOGS/edge-agent.log" >&2; die "the edge agent did not become live in 60 s"; }
  sleep 0.5
done
head -1 "$LOGS/edge-agent.log"
echo "GET /v1/providers lists the edge agent's runtimes:"
curl -sf "$URL/v1/providers" -H "Authorization: Bearer $API_KEY" \
  | grep -o '"provider":"edge","runtimes":\[[^]]*\]' || true

say "running Python with isolation 'standard' (sandstorm run)"
SAMPLE='import os, platform, socket
print("hello from Python", platform.python_version(), "in a sandbox")
print("hostname:", socket.gethostname(), "| uid:", os.getuid(), "| cwd:", os.getcwd())
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    print("network: reachable")
except OSError as e:
    print("network: none (" + type(e).__name__ + ")")
print("sum of squares 1..1000:", sum(i * i for i in range(1, 1001)))'
set +e
OUTPUT="$(dotnet "$CLI_DLL" run --control-plane "$URL" --api-key "$API_KEY" \
  --language python --isolation standard --timeout 30000 --wait 60 --code "$SAMPLE" 2>&1)"
RUN_STATUS=$?
set -e
printf '%s\n' "$OUTPUT"
[[ $RUN_STATUS -eq 0 ]] || die "the run did not succeed (exit $RUN_STATUS)"
printf '%s\n' "$OUTPUT" | grep -q 'edge/bwrap/' || die "the run did not execute under bwrap on the edge agent"

say "the run executed under bwrap on edge agent $(grep -o '"agentId": *"[^"]*"' "$EDGE_CONFIG" | cut -d'"' -f4)"
echo "agent log:"
tail -4 "$LOGS/edge-agent.log" | sed 's/^/  /'

if [[ $KEEP -eq 1 ]]; then
  echo
  echo "left running (--keep): control plane $URL, agent config $EDGE_CONFIG"
  echo "  try: dotnet $CLI_DLL run --control-plane $URL --language python --code 'print(42)'"
  echo "  stop: scripts/demo.sh --stop"
fi
