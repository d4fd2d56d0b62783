#!/bin/bash
# Directory login benchmark: atriumd against a local slapd (Debian's, started here with the
# test data of tests/integration/slapd.sh plus N users in nested groups), over StartTLS.
# Logins per second and latency, 8 clients, in three rounds over the same users:
#   first login     the local row is made and the groups (3 levels) are looked up
#   cache expired   group_cache_ttl passed: search, groups, bind
#   cache fresh     within the TTL: search and bind only
# Usage: bench/directory/run.sh [BUILD] [USERS]
set -u
build=${1:-build} N=${2:-400}
top=$(cd "$(dirname "$0")/../.." && pwd)
export PATH=$PATH:/usr/sbin
. "$top/tests/integration/slapd.sh"
T=$(mktemp -d /tmp/atrium-bench-dir-XXXXXX)
MPID=
cleanup() { slapd_stop "$T/ldap"; [ -n "$MPID" ] && kill "$MPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
command -v slapd >/dev/null || { echo "slapd is not installed (make deps)"; exit 1; }

slapd_make "$T/ldap"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# N users, each in one of 20 teams; the teams in two departments; those in "everyone".
{
        for t in $(seq 1 20); do
                printf 'dn: cn=team%d,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: team%d\n' "$t" "$t"
                for i in $(seq "$t" 20 "$N"); do printf 'member: uid=u%d,ou=people,dc=example,dc=org\n' "$i"; done
                printf 'member: cn=reader,dc=example,dc=org\n\n'
        done
        for d in 1 2; do
                printf 'dn: cn=dept%d,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: dept%d\n' "$d" "$d"
                for t in $(seq "$d" 2 20); do printf 'member: cn=team%d,ou=groups,dc=example,dc=org\n' "$t"; done
                printf '\n'
        done
        printf 'dn: cn=everyone,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: everyone\nmember: cn=dept1,ou=groups,dc=example,dc=org\nmember: cn=dept2,ou=groups,dc=example,dc=org\n\n'
        for i in $(seq 1 "$N"); do
                printf 'dn: uid=u%d,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: u%d\ncn: User %d\nsn: U\nuserPassword: u%d-pass-1\n\n' "$i" "$i" "$i" "$i"
        done
} >"$T/more.ldif"
slapadd -q -f "$T/ldap/slapd.conf" -l "$T/more.ldif" >/dev/null 2>&1
slapd_start "$T/ldap" "$PORT" || { echo "slapd did not start"; exit 1; }

cat >"$T/atrium.conf" <<CONF
[daemon]
log_level = warning
[gateway]
listen = 127.0.0.1:0
[manager]
listen = 127.0.0.1:0
password_cost = min
login_attempts_per_address = 10000
[directory]
urls = ldap://127.0.0.1:$PORT/
ca_file = $T/ldap/ca.pem
bind_dn = cn=reader,dc=example,dc=org
bind_password = reader-pass-1
user_base = ou=people,dc=example,dc=org
group_base = ou=groups,dc=example,dc=org
group_cache_ttl = 3600
CONF
"$build/src/atriumd" -c "$T/atrium.conf" --state-dir "$T/state" >/dev/null 2>"$T/err" &
MPID=$!
for _ in $(seq 100); do [ -s "$T/state/manager.url" ] && break; sleep 0.1; done
API=$(cat "$T/state/manager.url")/api/v1
USERS=$(seq -f 'u%g' 1 "$N")
ttl() { sed -i "s/^group_cache_ttl = .*/group_cache_ttl = $1/" "$T/atrium.conf"; kill -HUP "$MPID"; sleep 0.5; }

printf 'Directory logins: %d users, 8 clients, slapd on loopback with StartTLS, %s cores\n' "$N" "$(nproc)"
printf '%-34s %10s %8s %8s %8s\n' round logins/s p50_ms p99_ms failed
row() { read -r rate p50 p99 f <<<"$(python3 "$top/bench/directory/logins.py" "$API" 8 $USERS)"; printf '%-34s %10s %8s %8s %8s\n' "$1" "$rate" "$p50" "$p99" "$f"; }
row "first login (row made, groups)"
ttl 1; sleep 2
row "cache expired (search, groups, bind)"
ttl 3600
row "cache fresh (search, bind)"
