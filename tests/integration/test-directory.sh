#!/bin/bash
# Directory login against real OpenLDAP servers started here (Debian's slapd on loopback ports,
# generated configuration and data: tests/integration/slapd.sh): search-then-bind over
# StartTLS, wrong password, a locked user, LDAP injection attempts, nested groups filling
# Atrium groups (entitlements and roles), a user removed from a group losing the entitlement
# after the cache's TTL, the directory down (local admins still log in) and up, failover to the
# second server, and a misconfigured directory (bad CA, wrong base) reported with what to fix.
# Output is TAP. Usage: test-directory.sh ATRIUMD ATRIUM
set -u
ATRIUMD=$1 ATRIUM=$2
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"

command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || { echo "1..0 # SKIP no slapd"; exit 0; }
command -v qemu-img >/dev/null || { echo "1..0 # SKIP no qemu-img"; exit 0; }
export PATH=$PATH:/usr/sbin

T=$(mktemp -d /tmp/atrium-dir-XXXXXX)
STATE=$T/state CONF=$T/atrium.conf
export XDG_CONFIG_HOME=$T/cli HOME=$T
MPID= APID=
cleanup() {
        slapd_stop "$T/a"
        slapd_stop "$T/b"
        [ -n "$APID" ] && kill "$APID" 2>/dev/null && wait "$APID" 2>/dev/null
        [ -n "$MPID" ] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
        rm -rf "$T"
}
trap cleanup EXIT

# Two servers with the same data and certificates (b is a copy of a), on free ports.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PA=$(free_port) PB=$(free_port)
slapd_make "$T/a"
cp -r "$T/a" "$T/b"
sed -i "s|$T/a|$T/b|g" "$T/b/slapd.conf"
slapd_start "$T/a" "$PA"; is "slapd a is up" "$?" 0
slapd_start "$T/b" "$PB"; is "slapd b is up" "$?" 0

test_conf "$CONF"
cat >>"$CONF" <<CONF
heartbeat_interval = 1
startup_grace = 0
reconcile_interval = 1
[directory]
urls = ldap://127.0.0.1:$PA/ ldap://127.0.0.1:$PB/
start_tls = true
ca_file = $T/a/ca.pem
bind_dn = cn=reader,dc=example,dc=org
bind_password = reader-pass-1
user_base = ou=people,dc=example,dc=org
group_base = ou=groups,dc=example,dc=org
locked_filter = (employeeType=locked)
group_cache_ttl = 2
timeout = 2
extra_files =
CONF
"$ATRIUMD" -c "$CONF" --state-dir "$STATE" >"$T/manager.out" 2>"$T/manager.err" &
MPID=$!
wait_for 10 test -s "$STATE/manager.url"
URL=$(cat "$STATE/manager.url") API=$(cat "$STATE/manager.url")/api/v1 TOKEN=
started() { grep -q "the directory answers" "$T/manager.err"; }
wait_for 10 started; is "at start the manager checks the directory and says it answers" "$?" 0
like "... and never logs its password" "$(grep -c reader-pass-1 "$T/manager.err")" 0
http POST /auth/login '{"name":"admin","password":"admin-pass-1"}'
TOKEN=$(jget .token)
echo admin-pass-1 | "$ATRIUM" login "$URL" --ca "$STATE/tls/cert.pem" --password-stdin >/dev/null 2>&1
is "the local admin logs in" "$?" 0
testdriver_host
check "a pool" "$ATRIUM" pool create --name dev-pool --template tpl
check "another" "$ATRIUM" pool create --name staff-pool --template tpl

login() { http POST /auth/login "{\"name\":\"$1\",\"password\":\"$2\"}" ""; }
q() { dbq "$1"; }

# ---- logins ----
login alice alice-pass-1
is "a directory user logs in (search, then bind as the user, over StartTLS)" "$CODE $(jget .user.name)" "200 alice"
ALICE=$(jget .token)
is "... made a local row: source directory, name and mail from the directory" \
        "$(q "SELECT source, display_name, email, directory_dn, CAST(password_hash IS NULL AS INTEGER) FROM users WHERE name = 'alice'")" \
        "directory|Alice Example|alice@example.org|uid=alice,ou=people,dc=example,dc=org|1"
is "... recorded (actor: directory)" "$(q "SELECT actor FROM events WHERE action = 'create' AND object_name = 'alice'")" directory
login alice wrong-pass-1
is "a wrong password: 401" "$CODE $(jget .error.code)" "401 bad_credentials"
login nobody nobody-pass-1
is "an unknown user: the same 401" "$CODE $(jget .error.code)" "401 bad_credentials"
login alice ""
is "an empty password is refused (it would be an anonymous bind)" "$CODE" 401
login carol carol-pass-1
is "a locked user: 403, saying so" "$CODE $(jget .error.message)" "403 the account 'carol' is locked in the directory"
is "... recorded" "$(q "SELECT detail FROM events WHERE action = 'login_failed' AND object_name = 'carol'")" \
        "the account 'carol' is locked in the directory"
for name in '*' ')(uid=*' 'alice)(|(uid=*' 'al*' 'alice\\29' "$(printf 'x%.0s' $(seq 1 300))"; do
        login "$name" "alice-pass-1"
        is "an injection attempt in the login name is refused: $(head -c 24 <<<"$name")" "$CODE $(jget .error.code)" "400 invalid_value"
done
CODE=$(curl -sk -o "$T/b" -w '%{http_code}' "$API/auth/login" -H 'Content-Type: application/json' \
        --data-binary '{"name":"alice\u0000x","password":"alice-pass-1"}')
is "a NUL byte in the login name is refused" "$CODE" 400
login star star-pass-1
is "a user whose name attribute is '*' logs in (values are data, not filters)" "$CODE" 200

# ---- groups: nesting, entitlements, roles ----
check "an Atrium group filled from the directory group staff" "$ATRIUM" group create --name staff-g --directory_group staff
check "... one from admins, giving the operator role" "$ATRIUM" group create --name ops-g --directory_group admins --role operator
check "... one from devs" "$ATRIUM" group create --name dev-g --directory_group devs
"$ATRIUM" entitlement create --pool staff-pool --group staff-g >/dev/null
"$ATRIUM" entitlement create --pool dev-pool --group dev-g >/dev/null
OUT=$("$ATRIUM" directory test --user alice 2>&1)
like "directory test: the server that answered" "$OUT" "server:  ldap://127.0.0.1:$PA/"
like "... the DN" "$OUT" "dn:      uid=alice,ou=people,dc=example,dc=org"
like "... a direct group" "$OUT" "devs"
like "... a nested one, through which group" "$OUT" "cn=staff,ou=groups,dc=example,dc=org  (through devs)"
like "... two levels down" "$OUT" "cn=admins,ou=groups,dc=example,dc=org  (through staff)"
like "... a loop of groups ends" "$OUT" "loop2"
like "... the Atrium groups they fill" "$OUT" "atrium groups: staff-g ops-g dev-g"
like "... and the pools they open" "$OUT" "pools: staff-pool dev-pool"
OUT=$("$ATRIUM" --json directory test --user nobody 2>&1)
like "directory test of an unknown user says so" "$OUT" "'nobody' is in no configured directory"
login alice alice-pass-1; ALICE=$(jget .token)
is "at login alice's memberships come from the directory (nested included)" \
        "$(q "SELECT group_concat(g.name, ' ') FROM (SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id JOIN users u ON u.id = m.user_id WHERE u.name = 'alice' ORDER BY g.name) g")" \
        "dev-g ops-g staff-g"
http GET /me/desktops "" "$ALICE"
is "... her pools: through staff (nested) and devs" "$(jget '[.items[].pool] | sort | join(" ")')" "dev-pool staff-pool"
http GET /hosts "" "$ALICE"
is "... and the group ops-g (from admins, two levels) makes her an operator" "$CODE" 200
login bob bob-pass-1; BOB=$(jget .token)
http GET /me/desktops "" "$BOB"
is "bob (directly in staff) gets the staff pool only" "$(jget '[.items[].pool] | join(" ")')" "staff-pool"
http GET /hosts "" "$BOB"
is "... and is an operator too (staff is in admins)" "$CODE" 200

# Removed from devs in the directory: after the cache's TTL (2 s) alice loses what it gave.
ldap_change "$T/a" "$PA" "dn: cn=devs,ou=groups,dc=example,dc=org
changetype: modify
delete: member
member: uid=alice,ou=people,dc=example,dc=org"
ldap_change "$T/b" "$PB" "dn: cn=devs,ou=groups,dc=example,dc=org
changetype: modify
delete: member
member: uid=alice,ou=people,dc=example,dc=org"
lost() { http GET /me/desktops "" "$ALICE"; [ "$(jget '[.items[].pool] | join(" ")')" = "" ]; }
wait_for 15 lost; is "removed from devs, alice loses both pools within the TTL (no new login)" "$?" 0
http GET /hosts "" "$ALICE"
is "... and the operator role" "$CODE" 403
is "... recorded" "$(q "SELECT count(*) FROM events WHERE actor = 'directory' AND action = 'update' AND object_name = 'alice' AND detail LIKE 'groups from the directory: none%'")" 1
http GET /me/desktops "" "$BOB"
is "bob keeps his" "$(jget '[.items[].pool] | join(" ")')" "staff-pool"

http PUT /me/password '{"current_password":"bob-pass-1","new_password":"bob-pass-new-1"}' "$BOB"
is "a directory user's password is not changed here: 409, saying where" "$CODE $(jget .error.message)" \
        "409 'bob' logs in with the directory's password: change it there"

# ---- a second directory (directory.extra_files): names the first does not know ----
ldapadd -x -H "ldap://127.0.0.1:$PB/" -D cn=admin,dc=example,dc=org -w admin-pass-1 >/dev/null <<LDIF
dn: uid=zed,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: zed
cn: Zed Partner
sn: Partner
userPassword: zed-pass-1
LDIF
cat >"$T/partners.conf" <<CONF
[directory]
urls = ldap://127.0.0.1:$PB/
ca_file = $T/a/ca.pem
bind_dn = cn=reader,dc=example,dc=org
bind_password = reader-pass-1
user_base = ou=people,dc=example,dc=org
group_base = ou=groups,dc=example,dc=org
CONF
sed -i "s|^extra_files =.*|extra_files = $T/partners.conf|" "$CONF"; kill -HUP "$MPID"; sleep 0.5
login zed zed-pass-1
is "a user only in the second directory logs in through it" "$CODE $(jget .user.name)" "200 zed"
OUT=$("$ATRIUM" directory test --user zed 2>&1)
like "... directory test names that directory" "$OUT" "directory: $T/partners.conf"
login zed wrong-pass-1
is "... a wrong password there: 401" "$CODE" 401
login alice alice-pass-1
is "alice is still found in the first" "$CODE" 200
OUT=$("$ATRIUM" directory test --user alice 2>&1)
like "... (directory test: the first)" "$OUT" "directory: directory"

# ---- the directory down, failover, up ----
slapd_stop "$T/a"
login bob bob-pass-1
is "the first server down: the second answers (failover)" "$CODE" 200
OUT=$("$ATRIUM" directory test --user bob 2>&1)
like "... directory test names it" "$OUT" "server:  ldap://127.0.0.1:$PB/"
slapd_stop "$T/b"
login bob bob-pass-1
is "both down: 503" "$CODE $(jget .error.code)" "503 unavailable"
like "... with a clear message" "$(jget .error.message)" "the directory cannot be reached"
like "... naming each server tried" "$(jget .error.message)" "ldap://127.0.0.1:$PB/"
login admin admin-pass-1
is "the local admin still logs in" "$CODE" 200
http GET /me/desktops "" "$BOB"
is "bob's token and groups stay while the directory is away" "$(jget '[.items[].pool] | join(" ")')" "staff-pool"
slapd_start "$T/a" "$PA"
login bob bob-pass-1
is "the directory up again: logins work" "$CODE" 200

# ---- a misconfigured directory: what to fix ----
reconf() { sed -i "s|^$1 = .*|$1 = $2|" "$CONF"; kill -HUP "$MPID"; sleep 0.5; }
reconf ca_file "$T/a/other-ca.pem"
OUT=$("$ATRIUM" directory test --user bob 2>&1)
like "a CA that did not sign the server's certificate: says to check ca_file" "$OUT" "check directory.ca_file"
login bob bob-pass-1
is "... logins answer 503" "$CODE" 503
reconf ca_file "$T/a/ca.pem"
reconf user_base "ou=nobody,dc=example,dc=org"
OUT=$("$ATRIUM" directory test --user bob 2>&1)
like "a wrong base DN: says which key to fix" "$OUT" "the base 'ou=nobody,dc=example,dc=org' does not exist in the directory: fix directory.user_base"
reconf user_base "ou=people,dc=example,dc=org"
reconf bind_password "wrong-pass-1"
OUT=$("$ATRIUM" directory test --user bob 2>&1)
like "a wrong service password: says so" "$OUT" "check directory.bind_dn and bind_password"
like "... without showing it" "$(grep -c wrong-pass-1 <<<"$OUT")" 0
reconf bind_password "reader-pass-1"
login bob bob-pass-1
is "fixed: logins work again" "$CODE" 200
# A misconfigured directory is reported at start, saying what to fix (a second atriumd).
sed "s|^user_base = .*|user_base = ou=nobody,dc=example,dc=org|" "$CONF" >"$T/bad.conf"
on_pg && { pg_createdb bad; sed -i "s|/atrium?|/bad?|" "$T/bad.conf"; }
"$ATRIUMD" -c "$T/bad.conf" --state-dir "$T/bad" >/dev/null 2>"$T/bad.err" &
BADPID=$!
reported() { grep -q "fix directory.user_base" "$T/bad.err"; }
wait_for 15 reported; is "a wrong base DN is reported at start, naming the key to fix" "$?" 0
kill "$BADPID" 2>/dev/null; wait "$BADPID" 2>/dev/null
http POST /users '{"name":"alice","password":"alice-local-1"}'
is "a local account cannot take a directory user's name" "$CODE" 409

# ---- TOTP for a directory user ----
login bob bob-pass-1; BOB=$(jget .token)
http POST /me/totp "" "$BOB"; SECRET=$(jget .secret)
http POST /me/totp/confirm "{\"code\":\"$(totp_code "$SECRET")\"}" "$BOB"
is "a directory user enrols in TOTP" "$CODE" 200
login bob bob-pass-1
is "... then the directory password alone is not enough" "$CODE $(jget .error.code)" "401 otp_required"
http POST /auth/login "{\"name\":\"bob\",\"password\":\"bob-pass-1\",\"otp\":\"$(totp_code "$SECRET" 1)\"}" ""
is "... with the code it is" "$CODE" 200
http POST /auth/login "{\"name\":\"bob\",\"password\":\"wrong-pass-1\",\"otp\":\"$(totp_code "$SECRET" -1)\"}" ""
is "... and a code never saves a wrong directory password" "$CODE" 401
echo "1..$n"
[ "$failed" -eq 0 ]
