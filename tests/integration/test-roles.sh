#!/bin/bash
# Role checks on every route, table-driven: for each route of the OpenAPI document (itself
# checked against the server's route table by test-router) and each role (user, helpdesk,
# operator, admin; a local account each, and a user given operator by a group), the request is
# refused with 403 exactly when the role is below the route's least role (x-atrium-role). Ids
# in paths are ones that do not exist, so an allowed request changes nothing (404, 400, ...).
# Output is TAP. Usage: test-roles.sh ATRIUMD
set -u
ATRIUMD=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

T=$(mktemp -d /tmp/atrium-roles-XXXXXX)
STATE=$T/state CONF=$T/atrium.conf
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
test_conf "$CONF" warning
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
echo "1..$n"
[ "$failed" -eq 0 ]
