/* TLS material: a self-signed certificate for first start when none is configured. */
#pragma once
#include <glib.h>

/* Make DIR/cert.pem and DIR/key.pem (0600) unless both exist: an ECDSA P-256 key and a
 * self-signed certificate for the host name, localhost, 127.0.0.1 and ::1. */
gboolean tls_ensure_self_signed(const char *dir, GError **error);
/* SHA-256 fingerprint "AA:BB:..." of the first certificate in a PEM file. */
char *tls_cert_fingerprint(const char *cert_path, GError **error);
/* TRUE when the SHA-256 of a DER certificate is the fingerprint fp (hex, any case, with or
 * without colons or a "sha256:" prefix). */
gboolean tls_der_matches(const guint8 *der, gsize len, const char *fp);
