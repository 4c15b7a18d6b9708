#!/usr/bin/env bash
# Builds the binaries that the tests and `make run` need — kube-apiserver and
# etcd for envtest, `cluster` (kube-controller-manager, kube-scheduler, the
# CSI snapshot-controller, csi-snapshotter and csi-provisioner, and KWOK) for
# kubetest's WithCluster, golangci-lint for `make lint`, gosec for the SARIF test data,
# promtool for the alert rules' tests and natscli for looking at the wire — from the Go module proxy, once per
# version, into a cache outside the clone, and links them into bin/.
# For the console's browser tests it also installs Debian's chromium (apt-get,
# when /usr/bin/chromium is missing) and axe-core from npm (into the cache,
# linked as bin/axe.min.js). For the compose test (`make compose-test`):
# `compose` installs Debian's containerd, runc and CNI plugins (apt-get, when
# missing) and builds nerdctl from the module proxy.
#
# No download site is reachable from the machines this project is built on, so
# nothing is fetched but Go modules, Debian packages and npm packages.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.6.6}
GOLANGCI_VERSION=${GOLANGCI_VERSION:-2.15.0}
GOSEC_VERSION=${GOSEC_VERSION:-2.30.0}
NATSCLI_VERSION=${NATSCLI_VERSION:-0.5.0}
SNAPSHOTTER_VERSION=${SNAPSHOTTER_VERSION:-v8.7.0}
PROVISIONER_VERSION=${PROVISIONER_VERSION:-v6.4.0}
KWOK_VERSION=${KWOK_VERSION:-0.8.0}
# promtool from github.com/prometheus/prometheus: its module versions are
# v0.<3 minor><patch> (v0.316.0 is Prometheus 3.16.0).
PROMTOOL_VERSION=${PROMTOOL_VERSION:-0.316.0}
AXE_VERSION=${AXE_VERSION:-4.14.1}
NERDCTL_VERSION=${NERDCTL_VERSION:-v2.4.2}
# nerdctl v2.4.2 requires github.com/moby/moby/v2 v2.0.0-beta.28, which the
# module proxy answers 403 for; beta.25 (the newest it serves) has the same
# pkg/meminfo and pkg/sysinfo that nerdctl's `info` imports.
NERDCTL_MOBY_VERSION=${NERDCTL_MOBY_VERSION:-v2.0.0-beta.25}

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${STATEGUARD_TOOLS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/stateguard/tools}
bin="$root/bin"
mkdir -p "$cache" "$bin"
# One build at a time per cache: a second `make tools` (another clone, a
# helper's worktree) waits here and then finds the binaries built.
exec 9>"$cache/.lock"
flock 9
export GOWORK=off GOFLAGS=-mod=mod

log() { printf '%s tools: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# link NAME PATH links a cached binary into bin/.
link() { ln -sf "$2" "$bin/$1"; }

# kube_module DIR makes DIR a throwaway module that requires k8s.io/kubernetes
# and points every staging module it replaces with ./staging/... at the
# published v0.<minor>.<patch>; kube-apiserver, kube-controller-manager and
# kube-scheduler build from the same module, so they share the build cache.
kube_module() {
  (
    cd "$1"
    go mod init stateguard.local/kubernetes >/dev/null 2>&1
    go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" >download.json
    local gomod
    gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' download.json)
    {
      echo "require k8s.io/kubernetes v$KUBE_VERSION"
      sed -n 's/^[[:space:]]*\(k8s\.io\/[^ ]*\) => \.\/staging\/.*$/\1/p' "$gomod" |
        while read -r m; do echo "replace $m => $m v0.${KUBE_VERSION#1.}"; done
    } >>go.mod
    go get "k8s.io/kubernetes/cmd/kube-apiserver@v$KUBE_VERSION" >/dev/null
  )
}

# build_kube NAME... builds the named k8s.io/kubernetes commands that are
# not cached yet, from one throwaway module.
build_kube() {
  local name missing=() work=
  for name in "$@"; do
    [[ -x $cache/$name-v$KUBE_VERSION/$name ]] || missing+=("$name")
  done
  if ((${#missing[@]})); then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    log "preparing a module for ${missing[*]} v$KUBE_VERSION"
    kube_module "$work"
    for name in "${missing[@]}"; do
      build_in "$work" "$name" "v$KUBE_VERSION" "k8s.io/kubernetes/cmd/$name" "about 4 min on 2 cores for the first, less for the next"
    done
  fi
  for name in "$@"; do link "$name" "$cache/$name-v$KUBE_VERSION/$name"; done
}

# build_in WORK NAME VERSION PKG HINT builds PKG in module WORK into the cache
# and says how long it took.
build_in() {
  local work=$1 name=$2 version=$3 pkg=$4 hint=$5 dir start
  dir="$cache/$name-$version"
  start=$(date +%s)
  log "building $name $version ($hint)"
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$dir.tmp/$name" "$pkg")
  mkdir -p "$dir"
  mv "$dir.tmp/$name" "$dir/$name"
  rmdir "$dir.tmp"
  log "built $name $version in $(($(date +%s) - start)) s"
}

# build_replacing NAME... -- MODULE VERSION CMDDIR builds MODULE's commands
# CMDDIR/NAME from a throwaway module that copies MODULE's `replace
# k8s.io/...` lines (its go.mod has replace directives, so `go install
# pkg@version` refuses it).
build_replacing() {
  local names=() name missing=() work=
  while [[ $1 != -- ]]; do names+=("$1"); shift; done
  shift
  local module=$1 version=$2 cmddir=$3
  for name in "${names[@]}"; do
    [[ -x $cache/$name-$version/$name ]] || missing+=("$name")
  done
  if ((${#missing[@]})); then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    log "preparing a module for ${missing[*]} $version"
    (
      cd "$work"
      go mod init stateguard.local/tools >/dev/null 2>&1
      go mod download -json "$module@$version" >download.json
      local gomod
      gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' download.json)
      {
        echo "require $module $version"
        grep -E '^[[:space:]]*(replace[[:space:]]+)?k8s\.io/[^ ]+ => k8s\.io/' "$gomod" |
          sed -E 's/^[[:space:]]*(replace[[:space:]]+)?/replace /'
      } >>go.mod
      for name in "${missing[@]}"; do go get "$module/$cmddir/$name@$version" >/dev/null; done
    )
    for name in "${missing[@]}"; do
      build_in "$work" "$name" "$version" "$module/$cmddir/$name" "about 1-2 min on 2 cores"
    done
  fi
  for name in "${names[@]}"; do link "$name" "$cache/$name-$version/$name"; done
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
  local name=$1 pkg=$2 version=$3 dir out start
  shift 3
  dir="$cache/$name-v$version"
  out="$dir/$name"
  if [[ ! -x $out ]]; then
    start=$(date +%s)
    log "building $name v$version from the module proxy"
    GOBIN="$dir" go install -trimpath "$@" "$pkg@v$version"
    log "built $name v$version in $(($(date +%s) - start)) s"
  fi
  link "$name" "$out"
}

# install_chromium installs Debian's chromium package when /usr/bin/chromium
# is missing (the console's browser tests drive it headless; no browser is
# downloaded by a test tool).
install_chromium() {
  if [[ -x /usr/bin/chromium ]]; then
    log "chromium present: /usr/bin/chromium"
    return
  fi
  local sudo=
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  log "installing Debian's chromium for the console's browser tests: apt-get update && apt-get install -y chromium"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  log "installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
}

# install_containerd installs Debian's containerd, runc and CNI plugins
# (/usr/lib/cni) when containerd is missing: the compose test starts its own
# containerd with them (no daemon of the machine is used or left running).
install_containerd() {
  if [[ -x /usr/bin/containerd && -x /usr/sbin/runc && -x /usr/lib/cni/bridge ]]; then
    log "containerd present: $(/usr/bin/containerd --version)"
    return
  fi
  local sudo=
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  log "installing Debian's containerd, runc and CNI plugins: apt-get install -y containerd runc containernetworking-plugins iptables"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq containerd runc containernetworking-plugins iptables >/dev/null
  # The package starts the machine's containerd; the test runs its own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null; then
    log "note: Debian started the system containerd; the compose test does not use it"
  fi
  log "installed $(/usr/bin/containerd --version)"
}

# build_nerdctl builds nerdctl from a throwaway module: its go.mod has a
# replace directive (mod/tigron, used by its tests only), so `go install`
# refuses it, and one of its requirements is not served by the proxy (see
# NERDCTL_MOBY_VERSION).
build_nerdctl() {
  local dir="$cache/nerdctl-$NERDCTL_VERSION" work=
  if [[ ! -x $dir/nerdctl ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    log "preparing a module for nerdctl $NERDCTL_VERSION"
    (
      cd "$work"
      go mod init stateguard.local/nerdctl >/dev/null 2>&1
      {
        echo "require github.com/containerd/nerdctl/v2 $NERDCTL_VERSION"
        echo "replace github.com/moby/moby/v2 => github.com/moby/moby/v2 $NERDCTL_MOBY_VERSION"
      } >>go.mod
      go get "github.com/containerd/nerdctl/v2/cmd/nerdctl@$NERDCTL_VERSION" >/dev/null
    )
    build_in "$work" nerdctl "$NERDCTL_VERSION" github.com/containerd/nerdctl/v2/cmd/nerdctl "about 2-3 min on 2 cores"
  fi
  link nerdctl "$dir/nerdctl"
}

# install_axe installs axe-core (the accessibility rules the console's
# browser tests run inside each page) from npm into the cache.
install_axe() {
  local dir="$cache/axe-core-$AXE_VERSION"
  if [[ ! -f $dir/node_modules/axe-core/axe.min.js ]]; then
    log "installing axe-core $AXE_VERSION from npm into $dir"
    npm install --prefix "$dir" --no-audit --no-fund "axe-core@$AXE_VERSION" >/dev/null
  fi
  link axe.min.js "$dir/node_modules/axe-core/axe.min.js"
}

want=${*:-kube-apiserver etcd gosec promtool}
for t in $want; do
  case $t in
  kube-apiserver | kube-controller-manager | kube-scheduler) build_kube "$t" ;;
  # cluster: what kubetest's WithCluster and `make run` start beside the
  # API server.
  cluster)
    build_kube kube-controller-manager kube-scheduler
    build_replacing snapshot-controller csi-snapshotter -- github.com/kubernetes-csi/external-snapshotter/v8 "$SNAPSHOTTER_VERSION" cmd
    build_replacing csi-provisioner -- github.com/kubernetes-csi/external-provisioner/v6 "$PROVISIONER_VERSION" cmd
    go_tool kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" -ldflags "-s -w"
    ;;
  etcd) build_etcd ;;
  chromium) install_chromium ;;
  axe-core) install_axe ;;
  # compose: what `make compose-test` needs beside the images.
  compose)
    install_containerd
    build_nerdctl
    ;;
  containerd) install_containerd ;;
  nerdctl) build_nerdctl ;;
  golangci-lint) go_tool golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_VERSION" ;;
  gosec) go_tool gosec github.com/securego/gosec/v2/cmd/gosec "$GOSEC_VERSION" ;;
  nats) go_tool nats github.com/nats-io/natscli/nats "$NATSCLI_VERSION" ;;
  # promtool checks and unit-tests the alert rules (pkg/harness/manifests);
  # prometheus' go.mod has no replace directives, so `go install` takes it.
  promtool) go_tool promtool github.com/prometheus/prometheus/cmd/promtool "$PROMTOOL_VERSION" -ldflags "-s -w" ;;
  *) echo "unknown tool $t" >&2; exit 2 ;;
  esac
done
log "tools ready in $bin (cache: $cache)"
