#!/usr/bin/env bash
# Regenerates gosec-sampleapp.sarif: the SARIF that gosec (built by
# `make tools`, or `bash hack/tools.sh gosec`) writes for sampleapp/.
# Run from anywhere: go generate ./... in services/sastingest does it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
gosec="$root/bin/gosec"
if [[ ! -x $gosec ]]; then
  bash "$root/hack/tools.sh" gosec
fi
cd "$here/sampleapp"
# gosec exits 1 when it finds issues; -no-fail keeps the exit status 0.
GOWORK=off GOFLAGS=-mod=mod "$gosec" -quiet -no-fail -fmt sarif -out "$here/gosec-sampleapp.sarif" ./...
echo "wrote $here/gosec-sampleapp.sarif"
