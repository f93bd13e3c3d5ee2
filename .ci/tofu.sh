#!/usr/bin/env bash
# Builds an OpenTofu binary from the Go module proxy, for the Terraform provider's acceptance
# tests (terraform/). No Terraform or OpenTofu release binary can be downloaded on the project's
# machines, but OpenTofu is a Go module, so it is built from source in a throwaway module whose
# go.mod repeats OpenTofu's own replace directive (replace directives of a dependency are not
# applied by the Go tool, and OpenTofu needs its fork of hcl/v2).
#
# The result is cached at ${GLBDNS_CACHE:-$HOME/.cache/glbdns}/tofu-VERSION/tofu; when it exists
# the script does nothing. The binary's path is the last line on stdout, so callers can do
#   TF_ACC_TERRAFORM_PATH=$(bash .ci/tofu.sh | tail -n1)
set -euo pipefail

version="${TOFU_VERSION:-1.10.10}"
cache="${GLBDNS_CACHE:-$HOME/.cache/glbdns}/tofu-${version}"
bin="${cache}/tofu"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
go mod init tofubuild >&2

# OpenTofu's go.mod names its hcl fork in a replace directive: read it from the module cache so a
# version bump needs no edit here.
go mod download github.com/opentofu/opentofu@"v${version}" >&2
dir="$(go mod download -json github.com/opentofu/opentofu@"v${version}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
grep -E '^replace ' "$dir/go.mod" >>go.mod || true
if grep -q '^replace (' "$dir/go.mod"; then
  sed -n '/^replace (/,/^)/p' "$dir/go.mod" >>go.mod
fi

go get github.com/opentofu/opentofu/cmd/tofu@"v${version}" >&2
mkdir -p "$cache"
start=$(date +%s)
# dev=no drops the "-dev" suffix, as OpenTofu's release builds do.
nice -n 15 go build -trimpath -o "$bin.tmp" \
  -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
  github.com/opentofu/opentofu/cmd/tofu >&2
mv "$bin.tmp" "$bin"
echo "built tofu ${version} in $(( $(date +%s) - start ))s" >&2
"$bin" version >&2
echo "$bin"
