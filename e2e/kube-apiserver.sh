#!/bin/sh
# kube-apiserver.sh builds the pinned kube-apiserver used by the Kubernetes
# tests and prints its path on stdout (progress goes to stderr).
#
# The binary is built from the Go module proxy, in a scratch module under the
# cache directory, never inside the weft repository:
#
#   ${WEFT_CACHE:-$HOME/.cache/weft}/kube-apiserver-$KUBE_VERSION
#
# k8s.io/kubernetes is not meant to be required as a module: its go.mod
# replaces every staging module (k8s.io/api, k8s.io/client-go, ...) with a
# directory of its own tree. The scratch module maps each of those to the
# published k8s.io/<name> v0.<minor>.<patch> instead, read from that go.mod,
# so the list never goes stale. The version stamps make /version say
# $KUBE_VERSION instead of v0.0.0-master.
#
# Idempotent: an existing binary is reused. The build writes a temporary file
# and renames it, so an interrupted build never leaves a half-written binary.
# A cold build takes about 4 minutes and 1.7 GB of memory; its caches (about
# 3.5 GB) stay in GOCACHE and GOMODCACHE, outside the repository.
set -eu

KUBE_VERSION=${KUBE_VERSION:-v1.34.4}
cache=${WEFT_CACHE:-$HOME/.cache/weft}
bin=$cache/kube-apiserver-$KUBE_VERSION
src=$cache/kube-src

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

command -v go >/dev/null 2>&1 || {
	echo "kube-apiserver.sh: go is not in PATH" >&2
	exit 1
}

# v1.34.4 -> v0.34.4, the staging modules' version.
staging=v0.${KUBE_VERSION#v1.}

mkdir -p "$src"
cd "$src"
export GOWORK=off GOFLAGS=-mod=mod
echo "kube-apiserver.sh: building kube-apiserver $KUBE_VERSION in $src (about 4 minutes the first time)" >&2
kmod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
[ -f "$kmod" ] || {
	echo "kube-apiserver.sh: no go.mod for k8s.io/kubernetes@$KUBE_VERSION" >&2
	exit 1
}

{
	echo "module weft.local/kube-tool"
	echo
	echo "go 1.24.0"
	echo
	echo "godebug default=go1.24"
	echo
	echo "require k8s.io/kubernetes $KUBE_VERSION"
	echo
	echo "replace ("
	sed -n '/^replace (/,/^)/s|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\t\1 => \1 '"$staging"'|p' "$kmod"
	echo ")"
} >go.mod
cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
EOF
go mod tidy >&2

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
minor=${KUBE_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags="$ldflags -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
	ldflags="$ldflags -X $p.gitTreeState=clean -X $p.buildDate=$now"
done
tmp=$bin.tmp.$$
trap 'rm -f "$tmp"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
mv -f "$tmp" "$bin"
trap - EXIT
echo "$bin"
