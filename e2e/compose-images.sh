#!/bin/sh
# compose-images.sh makes the root filesystems of the images that stand in
# for the official ones the compose stack names (postgres:15,
# python:3.11-slim) on a machine with no registry, and prints the directory
# holding them.
#
# Each is a Debian bookworm minbase (debootstrap, from the machine's apt
# mirror) with Debian's package of the same program: python3 (3.11) and
# postgresql-15. The compose test `docker import`s the tarballs and builds
# the images it tags with the official names on them (for postgres, with
# e2e/testdata/postgres-entrypoint.sh, which honours POSTGRES_* as the
# official image does). Cached, by name, in
#
#   ${WEFT_CACHE:-$HOME/.cache/weft}/compose-images-$SUITE/{python,postgres}.tar
#
# Idempotent; each tarball is written to a temporary name and renamed.
set -eu

SUITE=${SUITE:-bookworm}
cache=${WEFT_CACHE:-$HOME/.cache/weft}
out=$cache/compose-images-$SUITE
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)}
mirror=${mirror:-http://deb.debian.org/debian}

command -v debootstrap >/dev/null 2>&1 || {
	echo "compose-images.sh: installing debootstrap" >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
}
mkdir -p "$out"

# rootfs NAME PACKAGES: debootstrap into a temporary directory, tar it to
# $out/NAME.tar.
rootfs() {
	name=$1 pkgs=$2
	[ -s "$out/$name.tar" ] && return 0
	echo "compose-images.sh: debootstrap $SUITE + $pkgs for $name (about a minute)" >&2
	dir=$(mktemp -d "$out/.$name.XXXXXX")
	debootstrap --variant=minbase --include="$pkgs" "$SUITE" "$dir" "$mirror" >&2
	rm -rf "$dir/var/cache/apt/archives"/*.deb "$dir/var/lib/apt/lists"/* "$dir/usr/share/doc" "$dir/usr/share/man"
	tar -C "$dir" --numeric-owner -cf "$out/.$name.tar.tmp" .
	mv -f "$out/.$name.tar.tmp" "$out/$name.tar"
	rm -rf "$dir"
}

rootfs python python3
rootfs postgres postgresql-15
echo "$out"
