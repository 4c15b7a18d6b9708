#!/usr/bin/env bash
# Builds the binaries that the tests and `make run` need — kube-apiserver and
# etcd for envtest, golangci-lint for `make lint`, gosec for the SARIF test data
# and natscli for looking at the wire — from the Go module proxy, once per
# version, into a cache outside the clone, and links them into bin/.
#
# No download site is reachable from the machines this project is built on, so
# nothing is fetched but Go modules.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.6.6}
GOLANGCI_VERSION=${GOLANGCI_VERSION:-2.15.0}
GOSEC_VERSION=${GOSEC_VERSION:-2.30.0}
NATSCLI_VERSION=${NATSCLI_VERSION:-0.5.0}

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${STATEGUARD_TOOLS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/stateguard/tools}
bin="$root/bin"
mkdir -p "$cache" "$bin"
export GOWORK=off GOFLAGS=-mod=mod

log() { printf '%s tools: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# link NAME PATH links a cached binary into bin/.
link() { ln -sf "$2" "$bin/$1"; }

build_kube_apiserver() {
  local dir="$cache/kube-apiserver-v$KUBE_VERSION" out
  out="$dir/kube-apiserver"
  if [[ ! -x $out ]]; then
    log "building kube-apiserver v$KUBE_VERSION from the module proxy (about 4 min on 2 cores)"
    local work
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    (
      cd "$work"
      go mod init stateguard.local/kubeapiserver >/dev/null 2>&1
      go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" >download.json
      local gomod
      gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' download.json)
      {
        echo "require k8s.io/kubernetes v$KUBE_VERSION"
        # Every staging module that kubernetes replaces with ./staging/... is
        # published on its own as v0.<minor>.<patch>.
        sed -n 's/^[[:space:]]*\(k8s\.io\/[^ ]*\) => \.\/staging\/.*$/\1/p' "$gomod" |
          while read -r m; do echo "replace $m => $m v0.${KUBE_VERSION#1.}"; done
      } >>go.mod
      go get "k8s.io/kubernetes/cmd/kube-apiserver@v$KUBE_VERSION" >/dev/null
      go build -trimpath -o "$dir.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
    )
    mkdir -p "$dir"
    mv "$dir.tmp/kube-apiserver" "$out"
    rmdir "$dir.tmp"
  fi
  link kube-apiserver "$out"
}

build_etcd() {
  local dir="$cache/etcd-v$ETCD_VERSION" out
  out="$dir/etcd"
  if [[ ! -x $out ]]; then
    log "building etcd v$ETCD_VERSION from the module proxy (about 30 s)"
    # etcd's go.mod has replace directives, so `go install pkg@version`
    # refuses it: build it from a throwaway module instead.
    local work
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    (
      cd "$work"
      go mod init stateguard.local/etcd >/dev/null 2>&1
      go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null
      go build -trimpath -o "$dir.tmp/etcd" go.etcd.io/etcd/server/v3
    )
    mkdir -p "$dir"
    mv "$dir.tmp/etcd" "$out"
    rmdir "$dir.tmp"
  fi
  link etcd "$out"
}

# go_tool NAME MODULE@VERSION builds one Go tool into its own versioned cache dir.
go_tool() {
  local name=$1 pkg=$2 version=$3 dir out
  dir="$cache/$name-v$version"
  out="$dir/$name"
  if [[ ! -x $out ]]; then
    log "building $name v$version from the module proxy"
    GOBIN="$dir" go install -trimpath "$pkg@v$version"
  fi
  link "$name" "$out"
}

want=${*:-kube-apiserver etcd gosec}
for t in $want; do
  case $t in
  kube-apiserver) build_kube_apiserver ;;
  etcd) build_etcd ;;
  golangci-lint) go_tool golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_VERSION" ;;
  gosec) go_tool gosec github.com/securego/gosec/v2/cmd/gosec "$GOSEC_VERSION" ;;
  nats) go_tool nats github.com/nats-io/natscli/nats "$NATSCLI_VERSION" ;;
  *) echo "unknown tool $t" >&2; exit 2 ;;
  esac
done
log "tools ready in $bin (cache: $cache)"
