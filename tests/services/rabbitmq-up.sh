#!/usr/bin/env bash
# Start ONE RabbitMQ (Debian's rabbitmq-server + rabbitmq_management) on 127.0.0.1 for the
# collector tests, and load the fixture the tests check: vhosts `/` and `test`, queues with a
# known number of ready messages. Idempotent: installs, configures and starts only what is
# missing; re-creates the fixture queues with the same contents on every call.
#
# Prints the environment the tests read, for `eval "$(tests/services/rabbitmq-up.sh)"`:
#   CARBIDE_RABBITMQ_URL       management API base URL (http://127.0.0.1:15672)
#   CARBIDE_RABBITMQ_USER      a user with the `monitoring` tag and access to both vhosts
#   CARBIDE_RABBITMQ_PASSWORD  its password
# Everything else goes to stderr.
set -euo pipefail

AMQP_PORT="${CARBIDE_RABBITMQ_AMQP_PORT:-5672}"
MGMT_PORT="${CARBIDE_RABBITMQ_MGMT_PORT:-15672}"
USER_NAME="carbide"
USER_PASS="carbide-test-secret"
URL="http://127.0.0.1:${MGMT_PORT}"
log() { echo "rabbitmq-up: $*" >&2; }

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

# 1. Install (the package's own service start is refused by policy-rc.d in containers).
if ! dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null | grep -q "install ok installed"; then
  log "installing rabbitmq-server"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd flock /tmp/apt.lock \
    apt-get install -y -qq --no-install-recommends rabbitmq-server >&2
fi

# 2. Configure: every listener on 127.0.0.1 only (AMQP, management, Erlang distribution, epmd).
conf="/etc/rabbitmq/rabbitmq.conf"
want="listeners.tcp.default = 127.0.0.1:${AMQP_PORT}
management.tcp.ip = 127.0.0.1
management.tcp.port = ${MGMT_PORT}
distribution.listener.interface = 127.0.0.1
loopback_users = none
# Short stats interval so rates and message counts show up quickly in the tests.
collect_statistics_interval = 1000"
if [ "$(cat "$conf" 2>/dev/null || true)" != "$want" ]; then
  printf '%s\n' "$want" | $sudo_cmd tee "$conf" >/dev/null
fi
envconf="/etc/rabbitmq/rabbitmq-env.conf"
grep -q '^ERL_EPMD_ADDRESS=127.0.0.1' "$envconf" 2>/dev/null ||
  echo 'ERL_EPMD_ADDRESS=127.0.0.1' | $sudo_cmd tee -a "$envconf" >/dev/null
export ERL_EPMD_ADDRESS=127.0.0.1
$sudo_cmd rabbitmq-plugins enable --offline rabbitmq_management >/dev/null

# 3. Start unless the management API already answers.
api() { curl -sf -u "guest:guest" -H 'content-type: application/json' "$@"; }
if ! curl -s -o /dev/null "$URL/api/overview" 2>/dev/null; then
  log "starting rabbitmq-server (this takes a while)"
  $sudo_cmd rabbitmq-server -detached >&2 2>/dev/null ||
    $sudo_cmd su rabbitmq -s /bin/sh -c '/usr/lib/rabbitmq/bin/rabbitmq-server -detached' >&2
  for _ in $(seq 1 180); do
    curl -s -o /dev/null "$URL/api/overview" 2>/dev/null && break
    sleep 1
  done
fi
for _ in $(seq 1 60); do
  api "$URL/api/overview" >/dev/null 2>&1 && break
  sleep 1
done
api "$URL/api/overview" >/dev/null || { log "management API at $URL does not answer"; exit 1; }

# 4. Fixture: user, vhosts, queues, messages (HTTP API; PUT is idempotent).
api -X PUT "$URL/api/users/$USER_NAME" \
  -d "{\"password\":\"$USER_PASS\",\"tags\":\"monitoring\"}" >/dev/null
for vh in %2F test; do
  api -X PUT "$URL/api/vhosts/$vh" >/dev/null
  for u in guest "$USER_NAME"; do
    api -X PUT "$URL/api/permissions/$vh/$u" \
      -d '{"configure":".*","write":".*","read":".*"}' >/dev/null
  done
done
# vhost queue messages
fixture="%2F orders 5
%2F empty 0
%2F ignored.tmp 1
test jobs 3
test orders 2"
while read -r vh q n; do
  api -X DELETE "$URL/api/queues/$vh/$q" >/dev/null 2>&1 || true
  api -X PUT "$URL/api/queues/$vh/$q" -d '{"durable":false,"auto_delete":false}' >/dev/null
  for i in $(seq 1 "$n"); do
    api -X POST "$URL/api/exchanges/$vh/amq.default/publish" \
      -d "{\"properties\":{},\"routing_key\":\"$q\",\"payload\":\"m$i\",\"payload_encoding\":\"string\"}" \
      | grep -q '"routed":true' || { log "publishing to $vh/$q failed"; exit 1; }
  done
done <<<"$fixture"
# Wait until the stats database shows the fixture (it lags the queues by a stats interval).
for _ in $(seq 1 30); do
  n=$(api "$URL/api/queues/%2F/orders?columns=messages" | sed -n 's/.*"messages":\([0-9]*\).*/\1/p')
  [ "$n" = "5" ] && break
  sleep 1
done
[ "$n" = "5" ] || { log "queue / orders shows ${n:-nothing} messages, expected 5"; exit 1; }
log "ready at $URL"

echo "export CARBIDE_RABBITMQ_URL=$URL"
echo "export CARBIDE_RABBITMQ_USER=$USER_NAME"
echo "export CARBIDE_RABBITMQ_PASSWORD=$USER_PASS"
