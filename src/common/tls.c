#include "common/tls.h"
#include "common/error.h"
#include "common/util.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_EXTENSION, X509_EXTENSION_free)

static gboolean fail(GError **error, const char *what)
{
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                    "cannot generate the self-signed certificate: %s failed", what);
        return FALSE;
}

static char *bio_text(BIO *bio)
{
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        return g_strndup(data, n);
}

static gboolean add_ext(X509 *cert, int nid, const char *value)
{
        X509V3_CTX ctx;
        g_autoptr(X509_EXTENSION) ext = NULL;

        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        return ext && X509_add_ext(cert, ext, -1);
}

/* Whether a key pair must be made (*make): not when both files exist; else DIR is made. */
static gboolean need_pair(const char *dir, const char *cert_path, const char *key_path,
                          gboolean *make, GError **error)
{
        *make = !(g_file_test(cert_path, G_FILE_TEST_EXISTS) &&
                  g_file_test(key_path, G_FILE_TEST_EXISTS));
        if (*make && g_mkdir_with_parents(dir, 0700) < 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "cannot create '%s': %s",
                            dir, g_strerror(errno));
                return FALSE;
        }
        return TRUE;
}

gboolean tls_ensure_self_signed(const char *dir, GError **error)
{
        g_autofree char *cert_path = g_build_filename(dir, "cert.pem", NULL);
        g_autofree char *key_path = g_build_filename(dir, "key.pem", NULL);
        g_autoptr(EVP_PKEY) key = NULL;
        g_autoptr(X509) cert = NULL;
        g_autoptr(BIO) kbio = BIO_new(BIO_s_mem());
        g_autoptr(BIO) cbio = BIO_new(BIO_s_mem());
        g_autofree char *san = NULL, *kpem = NULL, *cpem = NULL;
        char host[256] = "localhost";
        X509_NAME *name;
        gboolean made;

        if (!need_pair(dir, cert_path, key_path, &made, error))
                return FALSE;
        if (!made)
                return TRUE;
        gethostname(host, sizeof(host) - 1);
        key = EVP_EC_gen("P-256");
        if (!key)
                return fail(error, "key generation");
        cert = X509_new();
        X509_set_version(cert, 2);
        {
                guint64 serial;
                randombytes_buf(&serial, sizeof(serial));
                serial &= G_MAXINT64;
                ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial);
        }
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert), 60L * 60 * 24 * 825);
        X509_set_pubkey(cert, key);
        name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const guchar *)"Atrium", -1, -1, 0);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const guchar *)host, -1, -1, 0);
        X509_set_issuer_name(cert, name);
        san = g_strdup_printf("DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", host);
        if (!add_ext(cert, NID_subject_alt_name, san) ||
            !add_ext(cert, NID_basic_constraints, "critical,CA:TRUE") ||
            !add_ext(cert, NID_key_usage, "critical,digitalSignature,keyCertSign") ||
            !add_ext(cert, NID_ext_key_usage, "serverAuth"))
                return fail(error, "adding extensions");
        if (!X509_sign(cert, key, EVP_sha256()))
                return fail(error, "signing");
        if (!PEM_write_bio_PrivateKey(kbio, key, NULL, NULL, 0, NULL, NULL) ||
            !PEM_write_bio_X509(cbio, cert))
                return fail(error, "PEM encoding");
        kpem = bio_text(kbio);
        cpem = bio_text(cbio);
        return util_write_file(key_path, kpem, -1, 0600, error) &&
               util_write_file(cert_path, cpem, -1, 0644, error);
}

static void set_serial_and_dates(X509 *cert, long days)
{
        guint64 serial;

        X509_set_version(cert, 2);
        randombytes_buf(&serial, sizeof(serial));
        serial &= G_MAXINT64;
        ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial);
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert), 60L * 60 * 24 * days);
}

static gboolean pem_key_cert(EVP_PKEY *key, X509 *cert, char **key_pem, char **cert_pem)
{
        g_autoptr(BIO) kbio = BIO_new(BIO_s_mem());
        g_autoptr(BIO) cbio = BIO_new(BIO_s_mem());

        if ((key && !PEM_write_bio_PrivateKey(kbio, key, NULL, NULL, 0, NULL, NULL)) ||
            (cert && !PEM_write_bio_X509(cbio, cert)))
                return FALSE;
        if (key_pem)
                *key_pem = bio_text(kbio);
        if (cert_pem)
                *cert_pem = bio_text(cbio);
        return TRUE;
}

gboolean tls_hosts_ca_ensure(const char *dir, GError **error)
{
        g_autofree char *cert_path = g_build_filename(dir, "hosts-ca.pem", NULL);
        g_autofree char *key_path = g_build_filename(dir, "hosts-ca-key.pem", NULL);
        g_autoptr(EVP_PKEY) key = NULL;
        g_autoptr(X509) cert = NULL;
        g_autofree char *kpem = NULL, *cpem = NULL;
        X509_NAME *name;
        gboolean made;

        if (!need_pair(dir, cert_path, key_path, &made, error))
                return FALSE;
        if (!made)
                return TRUE;
        if (!(key = EVP_EC_gen("P-256")))
                return fail(error, "key generation");
        cert = X509_new();
        set_serial_and_dates(cert, 3650);
        X509_set_pubkey(cert, key);
        name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const guchar *)"Atrium", -1, -1, 0);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const guchar *)"Atrium hosts CA",
                                   -1, -1, 0);
        X509_set_issuer_name(cert, name);
        if (!add_ext(cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
            !add_ext(cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
            !add_ext(cert, NID_subject_key_identifier, "hash"))
                return fail(error, "adding extensions");
        if (!X509_sign(cert, key, EVP_sha256()))
                return fail(error, "signing");
        if (!pem_key_cert(key, cert, &kpem, &cpem))
                return fail(error, "PEM encoding");
        return util_write_file(key_path, kpem, -1, 0600, error) &&
               util_write_file(cert_path, cpem, -1, 0644, error);
}

gboolean tls_key_new(char **key_pem, char **public_pem, GError **error)
{
        g_autoptr(EVP_PKEY) key = EVP_EC_gen("P-256");
        g_autoptr(BIO) pbio = BIO_new(BIO_s_mem());

        if (!key || !pem_key_cert(key, NULL, key_pem, NULL) || !PEM_write_bio_PUBKEY(pbio, key))
                return fail(error, "key generation");
        *public_pem = bio_text(pbio);
        return TRUE;
}

char *tls_host_cert_issue(const char *dir, const char *public_pem, const char *name,
                          const char *address, GError **error)
{
        g_autofree char *cert_path = g_build_filename(dir, "hosts-ca.pem", NULL);
        g_autofree char *key_path = g_build_filename(dir, "hosts-ca-key.pem", NULL);
        g_autoptr(BIO) cabio = NULL, cakbio = NULL, pubbio = NULL;
        g_autoptr(X509) ca = NULL, cert = NULL;
        g_autoptr(EVP_PKEY) cakey = NULL, pub = NULL;
        g_autofree char *san = NULL;
        char *pem = NULL;
        X509_NAME *subject;
        GInetAddress *ip = address && address[0] ? g_inet_address_new_from_string(address) : NULL;

        if (!tls_hosts_ca_ensure(dir, error))
                goto out;
        cabio = BIO_new_file(cert_path, "r");
        cakbio = BIO_new_file(key_path, "r");
        if (!cabio || !cakbio || !(ca = PEM_read_bio_X509(cabio, NULL, NULL, NULL)) ||
            !(cakey = PEM_read_bio_PrivateKey(cakbio, NULL, NULL, NULL))) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                            "cannot read the hosts' CA in %s", dir);
                goto out;
        }
        pubbio = BIO_new_mem_buf(public_pem ? public_pem : "", -1);
        if (!public_pem || strlen(public_pem) > 4096 ||
            !(pub = PEM_read_bio_PUBKEY(pubbio, NULL, NULL, NULL))) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "the host's public key is not a PEM public key");
                goto out;
        }
        cert = X509_new();
        set_serial_and_dates(cert, 825);
        X509_set_pubkey(cert, pub);
        subject = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC, (const guchar *)"Atrium", -1, -1,
                                   0);
        X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const guchar *)name, -1, -1, 0);
        X509_set_issuer_name(cert, X509_get_subject_name(ca));
        san = ip ? g_strdup_printf("DNS:%s,IP:%s", name, address) : g_strdup_printf("DNS:%s", name);
        {
                X509V3_CTX ctx;
                const char *exts[][2] = {{"subjectAltName", san},
                                         {"basicConstraints", "critical,CA:FALSE"},
                                         {"keyUsage", "critical,digitalSignature,keyEncipherment"},
                                         {"extendedKeyUsage", "serverAuth,clientAuth"},
                                         {"authorityKeyIdentifier", "keyid"}};
                X509V3_set_ctx_nodb(&ctx);
                X509V3_set_ctx(&ctx, ca, cert, NULL, NULL, 0);
                for (gsize i = 0; i < G_N_ELEMENTS(exts); i++) {
                        g_autoptr(X509_EXTENSION) ext =
                                X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
                        if (!ext || !X509_add_ext(cert, ext, -1)) {
                                fail(error, "adding extensions");
                                goto out;
                        }
                }
        }
        if (!X509_sign(cert, cakey, EVP_sha256()) || !pem_key_cert(NULL, cert, NULL, &pem))
                fail(error, "signing");
out:
        g_clear_object(&ip);
        return pem;
}

char *tls_cert_fingerprint(const char *cert_path, GError **error)
{
        g_autoptr(BIO) bio = BIO_new_file(cert_path, "r");
        g_autoptr(X509) cert = NULL;
        guchar md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        GString *s;

        if (bio)
                cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!cert || !X509_digest(cert, EVP_sha256(), md, &n)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "cannot read a PEM certificate from '%s'", cert_path);
                return NULL;
        }
        s = g_string_new(NULL);
        for (unsigned int i = 0; i < n; i++)
                g_string_append_printf(s, "%s%02X", i ? ":" : "", md[i]);
        return g_string_free(s, FALSE);
}

gboolean tls_der_matches(const guint8 *der, gsize len, const char *fp)
{
        g_autofree char *have = g_compute_checksum_for_data(G_CHECKSUM_SHA256, der, len);
        g_autoptr(GString) want = g_string_new(NULL);

        if (g_str_has_prefix(fp, "sha256:") || g_str_has_prefix(fp, "SHA256:"))
                fp += 7;
        for (; *fp; fp++)
                if (g_ascii_isxdigit(*fp))
                        g_string_append_c(want, g_ascii_tolower(*fp));
        return g_str_equal(have, want->str);
}
