#!/usr/bin/env bash
# Start the real SQL servers the sql-to-graphite tests and benchmark talk to, idempotently:
# a private PostgreSQL cluster and a private MariaDB server, both on 127.0.0.1 with their data
# under $CARBIDE_SQL_DIR (default /var/tmp/carbide-sql), a test database `carbide_test` and a
# user `carbide` with a password. Installs the Debian packages when missing.
#
# Prints shell `export` lines on stdout (progress goes to stderr), so callers do:
#   eval "$(tests/services/sql-up.sh)"
# which sets CARBIDE_TEST_PG_DSN and CARBIDE_TEST_MYSQL_DSN. Running it again reuses the
# servers if they are up. `tests/services/sql-up.sh stop` stops both.
set -euo pipefail

dir="${CARBIDE_SQL_DIR:-/var/tmp/carbide-sql}"
pg_port="${CARBIDE_PG_PORT:-55432}"
my_port="${CARBIDE_MYSQL_PORT:-53306}"
user=carbide
password='Carbide-s3cret-pw'
db=carbide_test
log() { echo "sql-up: $*" >&2; }

sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
missing=()
for p in postgresql mariadb-server; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
pg_data="$dir/pg/data"
pg_sock="$dir/pg/sock"
my_data="$dir/mysql/data"
my_sock="$dir/mysql/mysqld.sock"
my_pid="$dir/mysql/mysqld.pid"

as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_mysql_owner() { if [ "$(id -u)" -eq 0 ]; then echo mysql; else id -un; fi; }

if [ "${1:-}" = "stop" ]; then
  [ -d "$pg_data" ] && as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m fast stop >&2 || true
  [ -f "$my_pid" ] && kill "$(cat "$my_pid")" 2>/dev/null || true
  exit 0
fi

mkdir -p "$dir/pg" "$dir/mysql"
chmod 755 "$dir"

# --- PostgreSQL: a private cluster, password auth over TCP -------------------------------
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir/pg"; fi
if [ ! -f "$pg_data/PG_VERSION" ]; then
  log "initdb $pg_data"
  pwfile="$(mktemp)"; echo "postgres-admin" > "$pwfile"; chmod 644 "$pwfile"
  as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 >&2
  rm -f "$pwfile"
  as_postgres mkdir -p "$pg_sock"
fi
if ! as_postgres "$pg_bin/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
  log "starting PostgreSQL on 127.0.0.1:$pg_port"
  as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$dir/pg/server.log" -w -o \
    "-p $pg_port -k $pg_sock -c listen_addresses=127.0.0.1 -c fsync=off" start >&2
fi
psql_admin() { as_postgres psql -h "$pg_sock" -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
  psql_admin -c "CREATE ROLE $user LOGIN" >&2
fi
psql_admin -c "ALTER ROLE $user PASSWORD '$password'" >&2
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
  psql_admin -c "CREATE DATABASE $db OWNER $user" >&2
fi

# --- MariaDB: a private server with its own datadir and socket ---------------------------
owner="$(as_mysql_owner)"
if [ "$(id -u)" -eq 0 ]; then chown "$owner": "$dir/mysql"; fi
if [ ! -d "$my_data/mysql" ]; then
  log "mariadb-install-db $my_data"
  mariadb-install-db --datadir="$my_data" --user="$owner" --auth-root-authentication-method=socket \
    --skip-test-db >/dev/null 2>"$dir/mysql/install.log" || { cat "$dir/mysql/install.log" >&2; exit 1; }
fi
my_admin() { mariadb --no-defaults -S "$my_sock" -u root "$@"; }
if ! my_admin -e "SELECT 1" >/dev/null 2>&1; then
  log "starting MariaDB on 127.0.0.1:$my_port"
  setsid mariadbd --no-defaults --datadir="$my_data" --socket="$my_sock" --pid-file="$my_pid" \
    --port="$my_port" --bind-address=127.0.0.1 --user="$owner" --skip-log-bin \
    --innodb-buffer-pool-size=32M --log-error="$dir/mysql/server.log" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 100); do
    my_admin -e "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.2
  done
  my_admin -e "SELECT 1" >/dev/null || { log "MariaDB did not start; see $dir/mysql/server.log"; exit 1; }
fi
my_admin -e "CREATE DATABASE IF NOT EXISTS $db;
  CREATE USER IF NOT EXISTS '$user'@'127.0.0.1';
  ALTER USER '$user'@'127.0.0.1' IDENTIFIED BY '$password';
  GRANT ALL ON $db.* TO '$user'@'127.0.0.1';" >&2

echo "export CARBIDE_TEST_PG_DSN='postgres://$user:$password@127.0.0.1:$pg_port/$db'"
echo "export CARBIDE_TEST_MYSQL_DSN='mysql://$user:$password@127.0.0.1:$my_port/$db'"
