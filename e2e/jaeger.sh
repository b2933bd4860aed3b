#!/bin/sh
# jaeger.sh builds the pinned Jaeger binary used by the end-to-end tests and
# prints its path on stdout (progress goes to stderr).
#
# The binary is built from the Go module proxy, in a scratch module under the
# cache directory, never inside the weft repository:
#
#   ${WEFT_CACHE:-$HOME/.cache/weft}/jaeger-$JAEGER_VERSION
#
# It is idempotent: an existing binary is reused as is. The build writes a
# temporary file and renames it, so an interrupted build never leaves a
# half-written binary behind. The e2e tests find the binary at the same path
# (or at $WEFT_JAEGER_BIN).
set -eu

JAEGER_VERSION=${JAEGER_VERSION:-v1.76.0}
cache=${WEFT_CACHE:-$HOME/.cache/weft}
bin=$cache/jaeger-$JAEGER_VERSION
src=$cache/jaeger-src-$JAEGER_VERSION

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

command -v go >/dev/null 2>&1 || {
	echo "jaeger.sh: go is not in PATH" >&2
	exit 1
}

mkdir -p "$src"
cd "$src"
# A scratch module of its own: the Jaeger dependency graph never touches weft's
# go.mod, and GOWORK=off keeps any go.work of the caller out of it.
export GOWORK=off
if [ ! -f go.mod ]; then
	go mod init weft.local/jaeger-tool >&2
fi
echo "jaeger.sh: building jaeger $JAEGER_VERSION in $src (this takes a few minutes the first time)" >&2
go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" >&2
tmp=$bin.tmp.$$
trap 'rm -f "$tmp"' EXIT
go build -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger >&2
mv -f "$tmp" "$bin"
trap - EXIT
echo "$bin"
