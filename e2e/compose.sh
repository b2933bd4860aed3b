#!/bin/sh
# compose.sh builds the pinned Docker Compose v2 CLI plugin used by the
# compose e2e test and prints its path on stdout (progress goes to stderr).
#
# Debian's docker-compose (1.29) is too old for the compose file (it rejects
# the top-level name: key), and Compose v2 cannot be `go install`ed (its
# go.mod has exclude directives), so the module is downloaded from the Go
# module proxy, copied somewhere writable and built there:
#
#   ${WEFT_CACHE:-$HOME/.cache/weft}/docker-compose-$COMPOSE_VERSION
#
# Idempotent: an existing binary is reused. The build writes a temporary file
# and renames it, so an interrupted build leaves nothing half-written.
set -eu

COMPOSE_VERSION=${COMPOSE_VERSION:-v2.40.3}
cache=${WEFT_CACHE:-$HOME/.cache/weft}
bin=$cache/docker-compose-$COMPOSE_VERSION
src=$cache/compose-src-$COMPOSE_VERSION

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
command -v go >/dev/null 2>&1 || {
	echo "compose.sh: go is not in PATH" >&2
	exit 1
}
export GOWORK=off GOFLAGS=-mod=mod
echo "compose.sh: building docker compose $COMPOSE_VERSION in $src (a minute or two the first time)" >&2
mkdir -p "$cache"
dir=$(cd "$cache" && go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir" ] || {
	echo "compose.sh: go mod download gave no module directory" >&2
	exit 1
}
rm -rf "$src"
cp -r "$dir" "$src"
chmod -R u+w "$src"
tmp=$bin.tmp.$$
trap 'rm -f "$tmp"' EXIT
(cd "$src" && CGO_ENABLED=0 go build -trimpath -o "$tmp" \
	-ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" ./cmd) >&2
mv -f "$tmp" "$bin"
trap - EXIT
rm -rf "$src"
echo "$bin"
