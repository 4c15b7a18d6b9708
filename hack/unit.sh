#!/usr/bin/env bash
# Runs the tests of every package whose tests need no control plane: the
# packages whose test binaries do not link pkg/harness/kubetest (and so need
# neither kube-apiserver nor etcd). JetStream tests stay in: natstest embeds
# the server in the test process, so they need no tool. -short makes the
# property tests run fewer random orders. This is the edit-test loop;
# `make test` runs everything, in full, with -race.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
flags=(${UNIT_FLAGS:--short -count=1 -timeout 10m})
status=0
for m in $(go list -m -f '{{.Dir}}'); do
  pkgs=$(cd "$m" && go list -test -f '{{if .ForTest}}{{else}}{{.ImportPath}}|{{join .Deps ","}}{{end}}' ./... |
    awk -F'|' '$1 ~ /\.test$/ && $2 !~ /stateguard\/pkg\/harness\/kubetest(,|$)/ && $1 !~ /harness\/kubetest\.test$/ { sub(/\.test$/, "", $1); print $1 }')
  [[ -n $pkgs ]] || continue
  echo "== unit ${m#"$root"/}"
  # shellcheck disable=SC2086
  (cd "$m" && go test "${flags[@]}" $pkgs) || status=1
done
exit $status
