/* TLS material: a self-signed certificate for first start when none is configured. */
#pragma once
#include <glib.h>

/* Make DIR/cert.pem and DIR/key.pem (0600) unless both exist: an ECDSA P-256 key and a
 * self-signed certificate for the host name, localhost, 127.0.0.1 and ::1. */
gboolean tls_ensure_self_signed(const char *dir, GError **error);
/* The hosts' CA (libvirt TLS between hosts, migrations): DIR/hosts-ca.pem and
 * DIR/hosts-ca-key.pem (0600), an ECDSA P-256 CA made unless both exist. */
gboolean tls_hosts_ca_ensure(const char *dir, GError **error);
/* A new ECDSA P-256 key: its private key and its public key, as PEM. */
gboolean tls_key_new(char **key_pem, char **public_pem, GError **error);
/* A certificate for a host, signed by the hosts' CA in DIR: subject CN=name, O=Atrium, the
 * public key public_pem (PEM), SAN DNS:name and IP:address (when address is an IP), for TLS
 * servers and clients alike, valid 825 days. Returns its PEM, or NULL with an error (a bad
 * public key: ATRIUM_ERROR_INVALID). */
char *tls_host_cert_issue(const char *dir, const char *public_pem, const char *name,
                          const char *address, GError **error);
/* SHA-256 fingerprint "AA:BB:..." of the first certificate in a PEM file. */
char *tls_cert_fingerprint(const char *cert_path, GError **error);
/* TRUE when the SHA-256 of a DER certificate is the fingerprint fp (hex, any case, with or
 * without colons or a "sha256:" prefix). */
gboolean tls_der_matches(const guint8 *der, gsize len, const char *fp);
