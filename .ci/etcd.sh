#!/usr/bin/env bash
# Builds an etcd server binary from the Go module proxy, for the cluster tests (e2e) and
# `make run-cluster`. No etcd release binary can be downloaded on the project's machines, but
# etcd's server is a Go module with a main package at its root, built here in a throwaway
# module (go install refuses it: its go.mod has replace directives, which the Go tool does
# not apply to a dependency, so the versions it requires are taken from the proxy).
#
# The result is cached at ${GLBDNS_CACHE:-$HOME/.cache/glbdns}/etcd-VERSION/etcd; when it
# exists the script does nothing. The binary's path is the last line on stdout:
#   ETCD=$(bash .ci/etcd.sh | tail -n1)
set -euo pipefail

version="${ETCD_VERSION:-3.7.3}"
cache="${GLBDNS_CACHE:-$HOME/.cache/glbdns}/etcd-${version}"
bin="${cache}/etcd"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
go mod init etcdbuild >&2
go get go.etcd.io/etcd/server/v3@"v${version}" >&2
mkdir -p "$cache"
start=$(date +%s)
nice -n 15 go build -trimpath -o "$bin.tmp" -ldflags "-s -w" go.etcd.io/etcd/server/v3 >&2
mv "$bin.tmp" "$bin"
echo "built etcd ${version} in $(( $(date +%s) - start ))s" >&2
"$bin" --version >&2
echo "$bin"
