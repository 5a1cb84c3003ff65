# Shared by dev/up, dev/down, dev/env, dev/status and dev/install. Each platform component lives in
# dev/components/<name>.sh and defines <name>_install, <name>_start, <name>_ready, <name>_env and,
# when plain SIGTERM is not the right way to stop it, <name>_stop_signal.
set -euo pipefail

DEV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$DEV_DIR")
# shellcheck source=dev/versions.sh
source "$DEV_DIR/versions.sh"

# Tools, cached by version and kept between runs.
MOOC_CACHE=${MOOC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mooc-recsys}
# Throwaway state of one `dev/up`: data directories, logs, pid files, generated credentials.
MOOC_RUN=${MOOC_RUN:-/tmp/mooc-recsys-dev}

MOOC_PG_PORT=${MOOC_PG_PORT:-15432}
MOOC_S3_PORT=${MOOC_S3_PORT:-19000}
MOOC_KAFKA_PORT=${MOOC_KAFKA_PORT:-19092}
MOOC_KAFKA_CONTROLLER_PORT=${MOOC_KAFKA_CONTROLLER_PORT:-19093}
MOOC_KAFKA_POD_PORT=${MOOC_KAFKA_POD_PORT:-19094}
MOOC_S3_BUCKET=${MOOC_S3_BUCKET:-mooc-data}

# Start order; dev/down stops in reverse.
COMPONENTS=(postgres s3 kafka kubernetes)

log() { printf '[dev] %s\n' "$*" >&2; }
die() { printf '[dev] error: %s\n' "$*" >&2; exit 1; }

for component in "${COMPONENTS[@]}"; do
  # shellcheck source=/dev/null
  source "$DEV_DIR/components/$component.sh"
done

# apt-get install the named packages that are missing (one `apt-get update` per run at most).
APT_UPDATED=""
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pid_file() { echo "$MOOC_RUN/$1.pid"; }

is_running() {
  local pid_file; pid_file=$(pid_file "$1")
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

# Starts a long-running process in its own session, logging to $MOOC_RUN/<name>.log.
start_daemon() {
  local name=$1; shift
  setsid "$@" >"$MOOC_RUN/$name.log" 2>&1 < /dev/null &
  echo $! >"$(pid_file "$name")"
}

stop_daemon() {
  local name=$1 signal=${2:-TERM} pid_file pid
  pid_file=$(pid_file "$name")
  [ -f "$pid_file" ] || return 0
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -"$signal" "$pid"
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop within 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pid_file"
}

# Stops a component by its own <name>_stop, or by signalling the daemon dev/up recorded.
stop_component() {
  local component=$1 signal=TERM
  if declare -F "${component}_stop" >/dev/null; then
    "${component}_stop"
    return
  fi
  declare -F "${component}_stop_signal" >/dev/null && signal=$("${component}_stop_signal")
  stop_daemon "$component" "$signal"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until <what> <seconds> <command...>: polls the command until it succeeds.
wait_until() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
  log "$what ready"
}

# Credentials are generated per `dev/up` and kept in $MOOC_RUN, never fixed in the repo.
credential() {
  local file="$MOOC_RUN/credentials/$1"
  if [ ! -f "$file" ]; then
    mkdir -p "$MOOC_RUN/credentials"
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file"
  fi
  cat "$file"
}
