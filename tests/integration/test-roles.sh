#!/bin/bash
# Role checks on every route, table-driven: for each route of the OpenAPI document (itself
# checked against the server's route table by test-router) and each role (user, helpdesk,
# operator, admin; a local account each, and a user given operator by a group), the request is
# refused with 403 exactly when the role is below the route's least role (x-atrium-role). Ids
# in paths are ones that do not exist, so an allowed request changes nothing (404, 400, ...).
# Then permissions on one pool (pool admins): what they open there and nothing elsewhere.
# Output is TAP. Usage: test-roles.sh ATRIUMD ATRIUM
set -u
ATRIUMD=$1 ATRIUM=$2
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

T=$(mktemp -d /tmp/atrium-roles-XXXXXX)
STATE=$T/state CONF=$T/atrium.conf
export XDG_CONFIG_HOME=$T/cli HOME=$T
PID= APID=
cleanup() {
        [ -n "$APID" ] && kill "$APID" 2>/dev/null && wait "$APID" 2>/dev/null
        [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
        rm -rf "$T"
}
trap cleanup EXIT
test_conf "$CONF" warning
printf 'heartbeat_interval = 1\nstartup_grace = 0\nreconcile_interval = 1\n' >>"$CONF"
"$ATRIUMD" -c "$CONF" --state-dir "$STATE" >"$T/out" 2>"$T/err" &
PID=$!
wait_for 10 test -s "$STATE/manager.url"
API=$(cat "$STATE/manager.url")/api/v1 TOKEN=
login() { curl -sk "$API/auth/login" -H 'Content-Type: application/json' -d "{\"name\":\"$1\",\"password\":\"$2\"}" | jq -r .token; }
TOKEN=$(login admin admin-pass-1)
declare -A TOK RANK=([user]=1 [helpdesk]=2 [operator]=3 [admin]=4 [none]=0)
for r in user helpdesk operator; do
        http POST /users "{\"name\":\"r-$r\",\"password\":\"$r-pass-12\",\"role\":\"$r\"}"
        [ "$CODE" = 201 ] || not_ok "user with role $r" "$CODE $BODY"
        TOK[$r]=$(login "r-$r" "$r-pass-12")
done
TOK[admin]=$TOKEN
# A plain user made operator by a group: the group's role counts.
http POST /users '{"name":"r-grouped","password":"grouped-pass-12"}'
http POST /groups '{"name":"ops","role":"operator"}'
http PUT /groups/ops/members/r-grouped
TOK[grouped]=$(login r-grouped grouped-pass-12)
http GET /hosts "" "${TOK[grouped]}"
is "a user in a group with the operator role may do what operators do" "$CODE" 200
http GET /users "" "${TOK[grouped]}"
is "... and no more (users are the admin's)" "$CODE" 403
http GET /roles "" "${TOK[user]}"
is "the roles list names helpdesk" "$(jget '[.items[].name] | join(" ")')" "user helpdesk operator admin"

# The table: every route but those that would end the caller's login, stream forever or
# need no login.
jq -r '.paths | to_entries[] | .key as $p | .value | to_entries[] |
        "\(.key) \($p) \(.value["x-atrium-role"])"' "$SRC/docs/openapi.json" >"$T/routes"
while read -r method path least; do
        [ "$least" = none ] && continue
        case "$path" in */auth/logout | */stream) continue ;; esac
        url=$(sed -E 's/\{[a-z_]+\}/nosuch-9/g' <<<"$path")
        got="" want=""
        for r in user helpdesk operator admin; do
                if [ "${RANK[$r]}" -lt "${RANK[$least]}" ]; then want+="$r:denied "; else want+="$r:allowed "; fi
                args=(-sk -o "$T/b" -w '%{http_code}' -X "${method^^}" -H "Authorization: Bearer ${TOK[$r]}")
                case ${method^^} in POST | PUT | PATCH) args+=(-H 'Content-Type: application/json' --data-binary '{}') ;; esac
                code=$(curl "${args[@]}" "$(cat "$STATE/manager.url")$url")
                if [ "$code" = 403 ] && grep -q "this needs the .* role" "$T/b"; then
                        got+="$r:denied "
                elif [ "$code" = 401 ] || [ "$code" = 000 ]; then
                        got+="$r:error($code) "
                else
                        got+="$r:allowed "
                fi
        done
        is "${method^^} $path (least role $least)" "$got" "$want"
done <"$T/routes"

# ---- permissions on one pool ----
# (the host's heartbeats write its row: refusals compare the rest)
dbdump() { dbdump_all | grep -v '^INSERT INTO api_tokens\|^INSERT INTO hosts'; }
URL=$(cat "$STATE/manager.url")
echo admin-pass-1 | "$ATRIUM" login "$URL" --insecure --password-stdin >/dev/null 2>&1
testdriver_host
check "pool p1 (one desktop, started)" "$ATRIUM" pool create --name p1 --template tpl --size 1 --spares 1 --wait
check "pool p2" "$ATRIUM" pool create --name p2 --template tpl
http POST /users '{"name":"pa","password":"pa-pass-123"}'
http POST /users '{"name":"pb","password":"pb-pass-123"}'
http POST /groups '{"name":"p1-desk"}'
http PUT /groups/p1-desk/members/pb
http POST /permissions '{"pool":"p1","user":"pa","role":"operator"}'
is "an admin makes pa the operator of pool p1" "$CODE $(jget .role)" "201 operator"
http POST /permissions '{"pool":"p1","group":"p1-desk","role":"helpdesk"}'
is "... and the group p1-desk its helpdesk" "$CODE" 201
refuse "a permission for both a user and a group" POST /permissions '{"pool":"p1","user":"pa","group":"p1-desk"}' 400 invalid_value
refuse "a permission for nobody" POST /permissions '{"pool":"p1"}' 400 invalid_value
refuse "a permission with the admin role (not a pool role)" POST /permissions '{"pool":"p1","user":"pa","role":"admin"}' 400 invalid_value
refuse "a permission on a pool that does not exist" POST /permissions '{"pool":"nosuch","user":"pa"}' 422 bad_reference
PA=$(login pa pa-pass-123) PB=$(login pb pb-pass-123)
http POST /permissions '{"pool":"p2","user":"pa"}' "$PA"
is "a pool admin cannot give permissions (admins only)" "$CODE" 403
http GET /pools/p1 "" "$PA"
is "pa reads pool p1" "$CODE" 200
http PATCH /pools/p1 '{"description":"run by pa"}' "$PA"
is "... changes it" "$CODE $(jget .description)" "200 run by pa"
is "... recorded as pa's change" "$(dbq "SELECT actor FROM events WHERE action = 'update' AND object_kind = 'pool' AND object_name = 'p1' ORDER BY id DESC LIMIT 1")" pa
http GET "/desktops?pool=p1" "" "$PA"
is "... sees all its desktops (none of them his)" "$CODE $(jget '.items | length')" "200 1"
D1=$(jget '.items[0].name')
http POST /entitlements '{"pool":"p1","user":"pb"}' "$PA"
is "... entitles users to it" "$CODE" 201
E1=$(jget .id)
http DELETE "/entitlements/$E1" "" "$PA"
is "... and removes entitlements of it" "$CODE" 204
http GET /pools/p2 "" "$PA"
is "pa cannot read pool p2" "$CODE" 403
http PATCH /pools/p2 '{"description":"x"}' "$PA"
is "... nor change it" "$CODE" 403
http POST /entitlements '{"pool":"p2","user":"pa"}' "$PA"
is "... nor entitle anyone to it" "$CODE" 403
http GET "/desktops?pool=p2" "" "$PA"
is "... and sees none of its desktops (his own only: none)" "$(jget '.items | length')" 0
http GET /hosts "" "$PA"
is "... nor anything else an operator sees" "$CODE" 403
running() { api_is "/desktops/$D1" .state running; }
wait_for 30 running
http POST "/desktops/$D1/reboot" "" "$PB"
is "pb (through the group p1-desk, helpdesk on p1) reboots a desktop of p1 that is not his" "$CODE" 200
http PATCH /pools/p1 '{"description":"pb"}' "$PB"
is "... but helpdesk cannot change the pool" "$CODE" 403
http DELETE /groups/p1-desk/members/pb "" "$TOKEN"
http POST "/desktops/$D1/reboot" "" "$PB"
is "out of the group, pb loses it at once" "$CODE" 404
echo "1..$n"
[ "$failed" -eq 0 ]
