#!/usr/bin/env bash
# Prepares a docker build context for an offline build (PREBUILT=1): the repo as it is on this
# host, with its installed node_modules and built dist/, minus git, dev-only tools and local data.
#
#   scripts/docker/prepare-context.sh <dir>        (run `npm ci && npm run build` first)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: prepare-context.sh <dir>}
[ -f "$repo/packages/cli/dist/bin/loom.js" ] || { echo "no build: run 'npm run build' first" >&2; exit 1; }
[ -d "$repo/node_modules" ] || { echo "no node_modules: run 'npm ci' first" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out"
# Dev-only packages (linters, test runners) are not needed at run time. TypeScript and @types/node
# stay: a peer compiles installed TypeScript chaincode (chaincode/basic) with them.
tar -C "$repo" -c \
  --exclude=./.git --exclude=./.loom --exclude=./.ci/out --exclude=./coverage --exclude=./bench/results \
  --exclude='*.tsbuildinfo' --exclude='*.cpuprofile' --exclude='*.map' --exclude='./node_modules/*.md' \
  --exclude=./node_modules/@biomejs --exclude=./node_modules/@esbuild \
  --exclude=./node_modules/esbuild --exclude=./node_modules/rollup --exclude=./node_modules/@rollup \
  --exclude=./node_modules/vite --exclude=./node_modules/vitest --exclude=./node_modules/@vitest \
  --exclude=./node_modules/.cache \
  . | tar -C "$out" -x
printf '.git\n' >"$out/.dockerignore"
du -sh "$out" | awk '{print "build context: " $1}'
