# A real OpenLDAP server for the tests (sourced): Debian's slapd with a generated
# configuration and data, on a loopback port, with a CA and a server certificate for StartTLS.
#   slapd_make DIR            configuration, certificates, data (dc=example,dc=org)
#   slapd_start DIR PORT      start it (bounded wait); slapd_stop DIR
# Data: ou=people with alice (in devs), bob (in staff directly), carol (locked:
# employeeType=locked), dave (no group), a user whose name is "*"; ou=groups with devs,
# (devs also lists the service account: a groupOfNames needs a member when alice is removed),
# staff (members: bob and the group devs: alice is in staff through devs), admins (member:
# the group staff: two levels), and a loop (loop1 <-> loop2, with alice in loop1).
# Passwords: NAME-pass-1; the service account cn=reader,dc=example,dc=org: reader-pass-1.

slapd_make() {
        local d=$1
        mkdir -p "$d/db"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Atrium test LDAP CA" \
                -keyout "$d/ca.key" -out "$d/ca.pem" >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/server.key" \
                -out "$d/server.csr" >/dev/null 2>&1
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/san.ext"
        openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
                -days 2 -extfile "$d/san.ext" -out "$d/server.pem" >/dev/null 2>&1
        # Another CA, which did not sign the server's certificate ("bad CA").
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Some other CA" \
                -keyout "$d/other.key" -out "$d/other-ca.pem" >/dev/null 2>&1
        chmod 644 "$d"/*.pem "$d"/*.key
        cat >"$d/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $d/slapd.pid
argsfile $d/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile $d/ca.pem
TLSCertificateFile $d/server.pem
TLSCertificateKeyFile $d/server.key
database mdb
maxsize 10485760
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin-pass-1
directory $d/db
index objectClass eq
index uid eq
index member eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
CONF
        {
                printf 'dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n'
                printf 'dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n'
                printf 'dn: ou=groups,dc=example,dc=org\nobjectClass: organizationalUnit\nou: groups\n\n'
                printf 'dn: cn=reader,dc=example,dc=org\nobjectClass: person\ncn: reader\nsn: reader\nuserPassword: reader-pass-1\n\n'
                local u
                for u in alice bob carol dave; do
                        printf 'dn: uid=%s,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s Example\nsn: Example\nmail: %s@example.org\nuserPassword: %s-pass-1\n' \
                                "$u" "$u" "${u^}" "$u" "$u"
                        [ "$u" = carol ] && printf 'employeeType: locked\n'
                        printf '\n'
                done
                printf 'dn: uid=star,ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: star\ncn: *\nsn: *\nuserPassword: star-pass-1\n\n'
                printf 'dn: cn=devs,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: devs\nmember: uid=alice,ou=people,dc=example,dc=org\nmember: cn=reader,dc=example,dc=org\n\n'
                printf 'dn: cn=staff,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: staff\nmember: uid=bob,ou=people,dc=example,dc=org\nmember: cn=devs,ou=groups,dc=example,dc=org\n\n'
                printf 'dn: cn=admins,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: admins\nmember: cn=staff,ou=groups,dc=example,dc=org\n\n'
                printf 'dn: cn=loop1,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: loop1\nmember: uid=alice,ou=people,dc=example,dc=org\nmember: cn=loop2,ou=groups,dc=example,dc=org\n\n'
                printf 'dn: cn=loop2,ou=groups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: loop2\nmember: cn=loop1,ou=groups,dc=example,dc=org\n\n'
        } >"$d/data.ldif"
        slapadd -q -f "$d/slapd.conf" -l "$d/data.ldif" >"$d/slapadd.log" 2>&1
}

slapd_start() { # DIR PORT
        local d=$1 port=$2 i
        slapd -f "$d/slapd.conf" -h "ldap://127.0.0.1:$port/" >"$d/slapd.log" 2>&1
        for i in $(seq 1 50); do
                ldapsearch -x -H "ldap://127.0.0.1:$port/" -D cn=reader,dc=example,dc=org -w reader-pass-1 \
                        -b dc=example,dc=org -s base '(objectClass=*)' dn >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}

slapd_stop() {
        local pid
        pid=$(cat "$1/slapd.pid" 2>/dev/null) || return 0
        kill "$pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
}

# ldap_modify DIR PORT LDIF: a change made as the directory's administrator
ldap_change() {
        ldapmodify -x -H "ldap://127.0.0.1:$2/" -D cn=admin,dc=example,dc=org -w admin-pass-1 <<<"$3" >/dev/null
}
