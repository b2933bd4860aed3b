#!/bin/sh
# The entrypoint of the local stand-in for the official postgres image
# (TestCompose, on e2e/compose-images.sh's root filesystem): Debian's postgresql-15, configured the way the
# official image's docker-entrypoint.sh does for the variables the compose
# stack uses. On first start (empty PGDATA): initdb with POSTGRES_USER
# (default postgres) and POSTGRES_PASSWORD, password (scram-sha-256)
# authentication from any address, the database POSTGRES_DB, and the
# /docker-entrypoint-initdb.d/*.sql and *.sh files run over the unix
# socket before the server listens on TCP. Then it execs postgres as the
# postgres user with the given arguments ("postgres -c k=v ...").
set -eu
export PATH=/usr/lib/postgresql/15/bin:$PATH
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
[ "${1:-}" = postgres ] && shift

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$0" postgres "$@"
fi

user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	[ -n "${POSTGRES_PASSWORD:-}" ] || {
		echo "postgres entrypoint: POSTGRES_PASSWORD is not set" >&2
		exit 1
	}
	pw=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"
	initdb -D "$PGDATA" -U "$user" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-instructions >&2
	rm -f "$pw"
	printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /var/run/postgresql" -w start >&2
	if [ "$db" != postgres ]; then
		psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d postgres -c "CREATE DATABASE \"$db\"" >&2
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case $f in
		*.sql) psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d "$db" -f "$f" >&2 ;;
		*.sh) . "$f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop >&2
	echo "postgres entrypoint: PostgreSQL init process complete; ready for start up." >&2
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /var/run/postgresql "$@"
