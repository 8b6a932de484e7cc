#!/usr/bin/env bash
# `npm run test:compose`: the containerized network end to end, on this machine alone.
#
#   1. a Docker engine and docker-compose (installed with apt-get and started when missing)
#   2. a base image: $LOOM_BASE_IMAGE if set (e.g. node:20-bookworm-slim where a registry is
#      reachable), else one imported from this machine's node binary (make-base-image.sh)
#   3. the project image from the host's node_modules and dist (PREBUILT=1; no registry needed)
#   4. docker-compose.yml (generated from network-config/default.yaml) up: CAs, orderers, peers,
#      `basic` deployed by the deploy service
#   5. the vitest suite test/compose against it from the host; extra arguments go to vitest
#   6. down -v, always: nothing is left running, no volume left behind
#
# Bounded throughout; the whole run takes a few minutes. Env: LOOM_BASE_IMAGE, LOOM_KEEP_UP=1
# (skip the teardown, to poke at a failed run; `docker-compose -p loomtest down -v` after).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
t0=$(date +%s)
say() { printf '[test:compose %4ss] %s\n' "$(($(date +%s) - t0))" "$*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

project=loomtest
image=loom:compose-test
compose_file=$repo/docker-compose.yml

# ---- 1. engine and compose ---------------------------------------------------------------------
if ! command -v dockerd >/dev/null 2>&1 || ! { docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; }; then
  command -v apt-get >/dev/null || fail "no Docker engine/compose and no apt-get to install them"
  say "installing docker.io and docker-compose with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq || fail "apt-get update failed"
  timeout 600 apt-get install -y -qq docker.io docker-compose >/dev/null || fail "apt-get install docker.io docker-compose failed"
fi
if ! timeout 10 docker info >/dev/null 2>&1; then
  say "starting dockerd (log: /tmp/loom-dockerd.log)"
  nohup dockerd >/tmp/loom-dockerd.log 2>&1 &
  for _ in $(seq 60); do timeout 5 docker info >/dev/null 2>&1 && break; sleep 1; done
  timeout 5 docker info >/dev/null 2>&1 || { tail -20 /tmp/loom-dockerd.log >&2; fail "dockerd did not come up in 60 s"; }
fi
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  compose=(docker-compose)
  v=$(docker-compose version --short 2>/dev/null || echo 0)
  # service_completed_successfully needs docker-compose >= 1.29
  [ "$(printf '%s\n1.29.0\n' "$v" | sort -V | head -1)" = 1.29.0 ] ||
    fail "docker-compose $v is too old (need >= 1.29, or docker compose v2)"
fi
dc() { "${compose[@]}" -p "$project" -f "$compose_file" "$@"; }
# With cgroup v1 every process of the host competes one by one with the whole /docker group (1024
# shares by default): on a busy machine all containers together get a sliver of a core and start
# far too slowly. Give the group the weight of many host processes (dockerd creates /docker at its
# first container; making it first is the same).
if [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ] && [ "$(docker info --format '{{.CgroupDriver}}')" = cgroupfs ]; then
  mkdir -p /sys/fs/cgroup/cpu/docker 2>/dev/null || true
  shares=/sys/fs/cgroup/cpu/docker/cpu.shares
  if [ -w "$shares" ] && [ "$(cat "$shares")" -lt 16384 ]; then
    echo 16384 >"$shares" && say "raised the containers' CPU shares ($shares) to 16384"
  fi
fi
say "engine $(docker version --format '{{.Server.Version}}'), compose: $("${compose[@]}" version --short 2>/dev/null || echo '?')"

# ---- the build this tests ---------------------------------------------------------------------
[ -f packages/cli/dist/bin/loom.js ] || fail "no build: run 'npm run build' first"
node packages/cli/dist/bin/loom.js network --help 2>/dev/null | grep -q "serve-ca" ||
  fail "the CLI has no 'network setup' (registerComposeCommands from packages/cli/src/commands/compose.ts is not wired into packages/cli/src/index.ts)"

# ---- cleanup, always ---------------------------------------------------------------------------
ctx=$(mktemp -d /tmp/loom-docker-ctx.XXXXXX)
cleanup() {
  local rc=$?
  set +e
  if [ "$rc" -ne 0 ]; then
    say "failure: state and last logs of every service"
    dc ps 2>&1
    dc logs --no-color --tail=40 2>&1 | tail -300
  fi
  if [ "${LOOM_KEEP_UP:-0}" = 1 ]; then
    say "LOOM_KEEP_UP=1: leaving the network up ('${compose[*]} -p $project down -v' to remove it)"
  else
    timeout 120 "${compose[@]}" -p "$project" -f "$compose_file" down -v --remove-orphans --timeout 5 >/dev/null 2>&1 ||
      say "WARNING: compose down failed"
    left=$(docker ps -aq --filter "label=com.docker.compose.project=$project")
    [ -z "$left" ] || docker rm -f $left >/dev/null 2>&1
  fi
  rm -rf "$ctx"
  say "done (exit $rc) in $(($(date +%s) - t0)) s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run killed before its teardown: remove what it left.
dc down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
for name in $(grep -E '^    container_name:' "$compose_file" | awk '{print $2}'); do
  if docker inspect "$name" >/dev/null 2>&1; then
    owner=$(docker inspect --format '{{index .Config.Labels "com.docker.compose.project"}}' "$name")
    [ "$owner" = "$project" ] || fail "a container named $name exists and is not this test's (project '$owner'): stop that network first"
    docker rm -f "$name" >/dev/null
  fi
done

# ---- 2. base image ---------------------------------------------------------------------------
base=${LOOM_BASE_IMAGE:-}
if [ -z "$base" ]; then
  base=loom-base:local
  want=$(node --version)
  have=$(docker run --rm "$base" node --version 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    say "importing base image $base from this machine's node $want"
    timeout 180 scripts/docker/make-base-image.sh "$base" >/dev/null || fail "could not build the base image"
  fi
fi

# ---- 3. project image ------------------------------------------------------------------------
say "building $image on $base from the host's build (PREBUILT=1)"
scripts/docker/prepare-context.sh "$ctx" >/dev/null
previous=$(docker images -q "$image")
timeout 600 docker build -q --build-arg BASE_IMAGE="$base" --build-arg PREBUILT=1 -t "$image" "$ctx" >/dev/null ||
  fail "docker build failed"
# Keep the disk bounded across runs: the previous test image and the build stage's leftovers.
[ -z "$previous" ] || [ "$previous" = "$(docker images -q "$image")" ] || docker rmi "$previous" >/dev/null 2>&1 || true
docker image prune -f --filter label=loom.stage=build >/dev/null 2>&1 || true
rm -rf "$ctx" && mkdir -p "$ctx"
export LOOM_IMAGE=$image

# ---- 4. up -----------------------------------------------------------------------------------
say "docker-compose up: CAs -> setup -> orderers -> join -> peers (+ chaincode install) -> deploy"
timeout 300 "${compose[@]}" -p "$project" -f "$compose_file" up -d >/dev/null || fail "compose up failed or timed out"
# The last one-shot service: deploy (approve + commit the chaincode) when the network has peers
# and chaincode, else join.
last=join
grep -qE '^  deploy:$' "$compose_file" && last=deploy
for _ in $(seq 300); do
  id=$(docker ps -aq --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$last")
  st=$( [ -n "$id" ] && docker inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$id" 2>/dev/null || echo "missing")
  [ "$st" = "exited 0" ] && break
  case "$st" in exited*) fail "the $last service failed ($st)";; esac
  sleep 1
done
[ "$st" = "exited 0" ] || fail "the $last service did not finish in 300 s ($st)"
say "network up"

# ---- 5. tests --------------------------------------------------------------------------------
set +e
npx vitest run --config vitest.compose.config.ts "$@"
rc=$?
set -e
exit "$rc"
