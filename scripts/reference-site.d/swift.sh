#!/usr/bin/env bash
# scripts/reference-site.d/swift.sh - real OpenStack Swift for the local
# reference site: an all-in-one proxy + account + container + object server
# (PyPI `swift`, pinned below) on 127.0.0.1 with Keystone auth (authtoken +
# keystoneauth), one device, replica count 1. Registered in Keystone as the
# `object-store` service; the reference site's users reach their projects'
# accounts (AUTH_<project id>) with their member role.
#
# Usage (BASE as scripts/reference-site; the site must be up):
#   swift.sh up     [BASE]   install (cached venv), configure, start (idempotent)
#   swift.sh down   [BASE]   stop (data kept in BASE/swift)
#   swift.sh status [BASE]
#
# `up` adds to BASE/reference-site.env (replacing its own earlier lines):
#   REFSITE_SWIFT_URL       public object-store endpoint, without AUTH_ part
#   REFSITE_SWIFT_PYTHON    a python with python-swiftclient (the main venv)
# Knobs: REFSITE_SWIFT_VENV (default venv-swift beside the main venv),
#        REFSITE_PORT_SWIFT (8080), REFSITE_PORT_SWIFT_{OBJECT,CONTAINER,ACCOUNT}
#        (6200, 6201, 6202).
set -o errexit -o nounset -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SWIFT_PIN="swift==2.38.3"
UV_VERSION=0.13.8

log() { printf '[refsite-swift %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

settings() {
  BASE=${REFSITE_BASE:-$REPO/.reference-site}
  [[ $BASE == /* ]] || BASE=$PWD/$BASE
  local cache=${XDG_CACHE_HOME:-$HOME/.cache}/fedcloud-appliance
  MAIN_VENV=${REFSITE_VENV:-$cache/venv-2026.1}
  SVENV=${REFSITE_SWIFT_VENV:-$(dirname "$MAIN_VENV")/venv-swift}
  UV=$cache/uv-$UV_VERSION/bin/uv
  HOST=127.0.0.1
  P_PROXY=${REFSITE_PORT_SWIFT:-8080}
  P_OBJ=${REFSITE_PORT_SWIFT_OBJECT:-6200}
  P_CONT=${REFSITE_PORT_SWIFT_CONTAINER:-6201}
  P_ACC=${REFSITE_PORT_SWIFT_ACCOUNT:-6202}
  S=$BASE/swift
  ETC=$S/etc RUN=$BASE/run LOG=$BASE/log DEV=$S/data
  ENVF=$BASE/reference-site.env
}

envvar() { sed -n "s/^$1=//p" "$ENVF" | tail -1; }

install() {
  if [ -x "$SVENV/bin/swift-proxy-server" ] && [ "$(cat "$SVENV/.pin" 2>/dev/null)" = "$SWIFT_PIN" ]; then
    return 0
  fi
  [ -x "$UV" ] || die "no uv at $UV (scripts/reference-site up installs it)"
  log "installing $SWIFT_PIN into $SVENV"
  rm -rf "$SVENV"
  "$UV" venv -q -p python3.11 "$SVENV"
  # the site's pins for everything shared with the OpenStack services
  VIRTUAL_ENV=$SVENV "$UV" pip install -q -c "$HERE/constraints.txt" "$SWIFT_PIN" keystonemiddleware
  echo "$SWIFT_PIN" > "$SVENV/.pin"
}

alive() { local p; p=$(cat "$RUN/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

spawn() {  # name cmd...
  local n=$1; shift
  alive "$n" && return 0
  setsid "$@" >>"$LOG/$n.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$n.pid"
}

keystone_setup() {  # service user, object-store service and endpoints (idempotent)
  local osc pw
  osc=$(envvar REFSITE_OPENSTACK)
  [ -x "$osc" ] || die "REFSITE_OPENSTACK not found in $ENVF: is the reference site up?"
  export OS_AUTH_URL OS_USERNAME OS_PASSWORD OS_PROJECT_NAME OS_USER_DOMAIN_ID OS_PROJECT_DOMAIN_ID \
    OS_REGION_NAME OS_IDENTITY_API_VERSION OS_INTERFACE
  OS_AUTH_URL=$(envvar OS_AUTH_URL) OS_USERNAME=$(envvar OS_USERNAME) OS_PASSWORD=$(envvar OS_PASSWORD)
  OS_PROJECT_NAME=$(envvar OS_PROJECT_NAME) OS_USER_DOMAIN_ID=default OS_PROJECT_DOMAIN_ID=default
  OS_REGION_NAME=$(envvar OS_REGION_NAME) OS_IDENTITY_API_VERSION=3 OS_INTERFACE=public
  pw=$(cat "$ETC/swift-user.pw")
  "$osc" user show swift >/dev/null 2>&1 ||
    "$osc" user create --domain default --password "$pw" swift >/dev/null
  "$osc" user set --password "$pw" swift
  "$osc" role add --project service --user swift admin 2>/dev/null ||
    { "$osc" project show service >/dev/null 2>&1 || "$osc" project create --domain default service >/dev/null
      "$osc" role add --project service --user swift admin; }
  "$osc" service show object-store >/dev/null 2>&1 ||
    "$osc" service create --name swift object-store >/dev/null
  local url="http://$HOST:$P_PROXY/v1/AUTH_%(project_id)s" i
  for i in public internal admin; do
    if [ -z "$("$osc" endpoint list --service object-store --interface $i -f value -c ID)" ]; then
      "$osc" endpoint create --region "$OS_REGION_NAME" object-store $i "$url" >/dev/null
    fi
  done
}

configure() {
  mkdir -p "$ETC" "$DEV/d1" "$RUN" "$LOG" "$S/cache"
  ( umask 077
    [ -f "$ETC/swift-user.pw" ] || printf 'refsite-swift-%s' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" > "$ETC/swift-user.pw"
    [ -f "$ETC/hash" ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$ETC/hash" )
  local ks; ks=$(envvar REFSITE_KEYSTONE_URL); ks=${ks%/v3}
  cat > "$ETC/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = $(cat "$ETC/hash")
swift_hash_path_prefix = refsite
[storage-policy:0]
name = Policy-0
default = yes
EOF
  local common="[DEFAULT]
devices = $DEV
mount_check = false
disable_fallocate = true
bind_ip = $HOST
workers = 0
swift_dir = $ETC
log_level = INFO
log_name = %s
"
  # shellcheck disable=SC2059
  { printf "$common" object; printf 'bind_port = %s\n[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object\n' "$P_OBJ"; } > "$ETC/object-server.conf"
  # shellcheck disable=SC2059
  { printf "$common" container; printf 'bind_port = %s\n[pipeline:main]\npipeline = container-server\n[app:container-server]\nuse = egg:swift#container\n' "$P_CONT"; } > "$ETC/container-server.conf"
  # shellcheck disable=SC2059
  { printf "$common" account; printf 'bind_port = %s\n[pipeline:main]\npipeline = account-server\n[app:account-server]\nuse = egg:swift#account\n' "$P_ACC"; } > "$ETC/account-server.conf"
  ( umask 077; cat > "$ETC/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = $HOST
bind_port = $P_PROXY
workers = 0
swift_dir = $ETC
log_name = proxy
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging authtoken keystoneauth proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = $ks/v3
auth_url = $ks
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = swift
password = $(cat "$ETC/swift-user.pw")
delay_auth_decision = true
service_token_roles_required = true

[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member
reseller_admin_role = ResellerAdmin
EOF
  )
  if [ ! -f "$ETC/object.ring.gz" ]; then
    local b=$SVENV/bin/swift-ring-builder r port
    for r in object container account; do
      case $r in object) port=$P_OBJ ;; container) port=$P_CONT ;; account) port=$P_ACC ;; esac
      "$b" "$ETC/$r.builder" create 6 1 1 >/dev/null
      "$b" "$ETC/$r.builder" add "r1z1-$HOST:$port/d1" 100 >/dev/null
      "$b" "$ETC/$r.builder" rebalance >/dev/null || true
    done
  fi
}

start() {
  local n
  for n in object container account; do
    spawn "swift-$n" "$SVENV/bin/swift-$n-server" "$ETC/$n-server.conf"
  done
  spawn swift-proxy "$SVENV/bin/swift-proxy-server" "$ETC/proxy-server.conf"
  local t0=$SECONDS
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$HOST:$P_PROXY/healthcheck")" = 200 ]; do
    for n in object container account proxy; do
      alive "swift-$n" || die "swift-$n exited, see $LOG/swift-$n.log"
    done
    (( SECONDS - t0 > 60 )) && die "swift proxy not answering on $HOST:$P_PROXY, see $LOG/swift-proxy.log"
    sleep 0.2
  done
}

write_env() {
  local tmp=$ENVF.swift.tmp
  ( umask 077
    grep -v -E '^REFSITE_SWIFT_(URL|PYTHON)=' "$ENVF" > "$tmp"
    printf 'REFSITE_SWIFT_URL=http://%s:%s/v1\nREFSITE_SWIFT_PYTHON=%s\n' "$HOST" "$P_PROXY" "$MAIN_VENV/bin/python" >> "$tmp" )
  mv "$tmp" "$ENVF"
}

verify() {  # the site's user stores and reads an object in alpha-1's account
  local py=$MAIN_VENV/bin/python out
  cat > "$S/check.py" <<'EOF'
import sys
from swiftclient import client
url, user, pw = sys.argv[1:4]
c = client.Connection(authurl=url, user=user, key=pw, auth_version="3",
                      os_options={"project_name": "alpha-1", "project_domain_id": "default",
                                  "user_domain_id": "default", "region_name": "RegionOne"})
c.put_container("refsite-check")
c.put_object("refsite-check", "x", b"ok")
assert c.get_object("refsite-check", "x")[1] == b"ok"
c.delete_object("refsite-check", "x")
c.delete_container("refsite-check")
print("ok")
EOF
  if out=$("$py" "$S/check.py" "$(envvar REFSITE_KEYSTONE_URL)" "$(envvar REFSITE_USER)" "$(envvar REFSITE_PASSWORD)" 2>&1); then
    log "verified: object stored and read back by the site's user via Keystone"
  else
    log "WARNING: swift check failed: $out"
  fi
}

cmd_up() {
  [ -f "$ENVF" ] || die "no $ENVF: run scripts/reference-site up first"
  install
  configure
  keystone_setup
  start
  write_env
  verify
  log "swift up: http://$HOST:$P_PROXY/v1"
}

cmd_down() {
  local n p
  for n in proxy object container account; do
    p=$(cat "$RUN/swift-$n.pid" 2>/dev/null) || continue
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    rm -f "$RUN/swift-$n.pid"
  done
  log "swift stopped (data kept in $S)"
}

cmd_status() {
  local n rc=0
  for n in proxy object container account; do
    if alive "swift-$n"; then printf '%-18s running  %s\n' "swift-$n" "$(cat "$RUN/swift-$n.pid")"
    else printf '%-18s stopped  -\n' "swift-$n"; rc=1; fi
  done
  return $rc
}

main() {
  local cmd=${1:-}
  [ -n "${2:-}" ] && export REFSITE_BASE=$2
  settings
  case $cmd in
    up) cmd_up ;; down) cmd_down ;; status) cmd_status ;;
    *) echo "usage: $0 {up|down|status} [BASE]" >&2; exit 2 ;;
  esac
}
main "$@"
