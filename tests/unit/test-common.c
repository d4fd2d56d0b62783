/* util, log, json and error helpers. */
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/util.h"
#include "testutil.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <unistd.h>

static void test_names(void)
{
        static const struct {
                const char *name;
                gboolean ok;
        } cases[] = {
                {"pool1", TRUE},
                {"a", TRUE},
                {"Win10.base_v2-x", TRUE},
                {"", FALSE},
                {"1pool", FALSE},
                {"-x", FALSE},
                {"a b", FALSE},
                {"a\tb", FALSE},
                {"a\x01", FALSE},
                {"é", FALSE},
                {"a/b", FALSE},
                {"a'b", FALSE},
                {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", TRUE},
                {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", FALSE},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                gboolean ok = util_name_valid(cases[i].name, &error);
                g_assert_cmpint(ok, ==, cases[i].ok);
                if (!ok)
                        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        }
        g_assert_false(util_name_valid(NULL, NULL));
}

static void test_text(void)
{
        g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;

        g_assert_true(util_text_valid("d", "héllo\tworld", 100, NULL));
        g_assert_false(util_text_valid("d", "bell\a", 100, &e1));
        g_assert_error(e1, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        g_assert_false(util_text_valid("d", "\xff\xfe", 100, &e2));
        g_assert_error(e2, ATRIUM_ERROR, ATRIUM_ERROR_INVALID_UTF8);
        g_assert_false(util_text_valid("d", "toolong", 3, &e3));
        g_assert_nonnull(strstr(e3->message, "at most 3"));
}

static void test_ids(void)
{
        gint64 v = 0;

        g_assert_true(util_parse_id("42", &v));
        g_assert_cmpint(v, ==, 42);
        g_assert_false(util_parse_id("0", &v));
        g_assert_false(util_parse_id("-1", &v));
        g_assert_false(util_parse_id("4x", &v));
        g_assert_false(util_parse_id("", &v));
        g_assert_false(util_parse_id("99999999999999999999", &v));
        g_assert_false(util_parse_id(NULL, &v));
}

static void test_hostport(void)
{
        g_autofree char *h1 = NULL, *h2 = NULL;
        guint16 p;

        g_assert_true(util_split_hostport("127.0.0.1:8444", &h1, &p, NULL));
        g_assert_cmpstr(h1, ==, "127.0.0.1");
        g_assert_cmpuint(p, ==, 8444);
        g_assert_true(util_split_hostport("[::1]:0", &h2, &p, NULL));
        g_assert_cmpstr(h2, ==, "::1");
        g_assert_cmpuint(p, ==, 0);
        for (const char *const *bad =
                     (const char *const[]){"host", ":80", "h:99999", "[::1]80", "h:x", NULL};
             *bad; bad++) {
                g_autofree char *h = NULL;
                g_assert_false(util_split_hostport(*bad, &h, &p, NULL));
        }
        g_assert_true(util_addr_is_loopback("127.0.0.5"));
        g_assert_true(util_addr_is_loopback("::1"));
        g_assert_true(util_addr_is_loopback("localhost"));
        g_assert_false(util_addr_is_loopback("0.0.0.0"));
        g_assert_false(util_addr_is_loopback("10.1.2.3"));
}

static void test_pidfile(void)
{
        g_autofree char *dir = testutil_tmpdir();
        g_autoptr(GError) error = NULL;
        int fd = util_pidfile_lock(dir, &error);
        int fd2;
        g_autofree char *pid = g_strdup_printf("(pid %d)", (int)getpid());

        g_assert_no_error(error);
        g_assert_cmpint(fd, >=, 0);
        fd2 = util_pidfile_lock(dir, &error);
        g_assert_cmpint(fd2, ==, -1);
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT);
        g_assert_nonnull(strstr(error->message, "already in use"));
        g_assert_nonnull(strstr(error->message, pid));
        close(fd);
        g_clear_error(&error);
        fd2 = util_pidfile_lock(dir, &error); /* released: can be taken again */
        g_assert_no_error(error);
        close(fd2);
        testutil_rmdir(dir);
}

static void test_random(void)
{
        g_autofree char *a = util_random_token(32), *b = util_random_token(32);
        g_autofree char *pw = util_random_password();

        g_assert_cmpuint(strlen(a), ==, 43);
        g_assert_cmpstr(a, !=, b);
        g_assert_cmpuint(strlen(pw), ==, 20);
}

static void test_log_line(void)
{
        g_autofree char *line = log_format_line(G_LOG_LEVEL_WARNING, "api", "two\nlines\r");

        g_assert_nonnull(strstr(line, " warning api: two\\nlines\\r"));
        g_assert_null(strchr(line, '\n'));
        g_assert_true(log_set_level("debug", NULL));
        g_assert_false(log_set_level("loud", NULL));
}

static void test_json_depth(void)
{
        g_assert_cmpuint(json_scan_depth("{}", 2, 10), ==, 1);
        g_assert_cmpuint(json_scan_depth("{\"a\":[1,{\"b\":[]}]}", 18, 10), ==, 4);
        g_assert_cmpuint(json_scan_depth("{\"a\":\"[[[[\"}", 12, 10), ==, 1);
        g_assert_cmpuint(json_scan_depth("{\"a\\\"[[\":1}", 12, 10), ==, 1);
        g_assert_cmpuint(json_scan_depth("[[[[[[", 6, 3), ==, 4); /* stops past max */
}

static void test_json_body(void)
{
        static const struct {
                const char *text;
                int code; /* -1: ok */
        } cases[] = {
                {"{\"a\":1}", -1},
                {"", ATRIUM_ERROR_INVALID_JSON},
                {"{", ATRIUM_ERROR_INVALID_JSON},
                {"[1,2]", ATRIUM_ERROR_INVALID_JSON},
                {"42", ATRIUM_ERROR_INVALID_JSON},
                {"{\"a\":\"\xff\"}", ATRIUM_ERROR_INVALID_UTF8},
                {"{\"a\":\"\\ud83d\\ude00 ok\"}", -1},
                {"{\"a\":\"\\ud83d\"}", ATRIUM_ERROR_INVALID_JSON},
                {"{\"a\":\"\\ude00\"}", ATRIUM_ERROR_INVALID_JSON},
                {"{\"a\":\"\\u12\"}", ATRIUM_ERROR_INVALID_JSON},
                {"{\"a\":\"\\u0000\"}", ATRIUM_ERROR_INVALID_JSON},
                {"{\"a\":\"\\q\"}", ATRIUM_ERROR_INVALID_JSON},
                {"{}{}", ATRIUM_ERROR_INVALID_JSON},
                {"{} x", ATRIUM_ERROR_INVALID_JSON},
                {"{}  \n", -1},
                {"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                 "}",
                 ATRIUM_ERROR_TOO_DEEP},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                JsonNode *n = json_parse_body(cases[i].text, strlen(cases[i].text), 32, &error);
                if (cases[i].code < 0) {
                        g_assert_no_error(error);
                        g_assert_nonnull(n);
                        json_node_unref(n);
                } else {
                        g_assert_null(n);
                        g_assert_error(error, ATRIUM_ERROR, cases[i].code);
                }
        }
}

static void test_error_table(void)
{
        for (int i = 0; i < ATRIUM_ERROR_LAST; i++) {
                const char *s = atrium_error_code_to_string(i);
                g_assert_cmpint(atrium_error_code_from_string(s), ==, i);
                g_assert_cmpuint(atrium_error_http_status(i), >=, 400);
        }
        g_assert_cmpint(atrium_error_code_from_string("nope"), ==, -1);
        {
                g_autoptr(GError) e = g_error_new(ATRIUM_ERROR, ATRIUM_ERROR_IN_USE, "x 'y'");
                g_autoptr(JsonNode) body = json_error_body(e);
                g_autofree char *t = json_node_to_text(body, FALSE);
                g_assert_cmpstr(t, ==, "{\"error\":{\"code\":\"in_use\",\"message\":\"x 'y'\"}}");
        }
        /* The field an error is about, for forms: carried as data, never read off the text. */
        {
                g_autoptr(GError) e = NULL, copy = NULL, plain = NULL, other = NULL, longer = NULL;
                g_autofree char *big = g_strnfill(64, 'x');
                atrium_set_field_error(&e, ATRIUM_ERROR_INVALID, "spares",
                                       "a pool cannot keep more spares (%d) than desktops", 3);
                g_assert_cmpstr(atrium_error_field(e), ==, "spares");
                g_assert_cmpstr(e->message, ==, "a pool cannot keep more spares (3) than desktops");
                g_prefix_error(&e, "field 'spares' of a pool: ");
                g_assert_cmpstr(atrium_error_field(e), ==, "spares"); /* kept when prefixed */
                copy = g_error_copy(e);
                g_assert_cmpstr(atrium_error_field(copy), ==, "spares"); /* and when copied */
                atrium_set_field_error(&e, ATRIUM_ERROR_INVALID, "other", "set twice"); /* no-op */
                g_assert_cmpstr(atrium_error_field(e), ==, "spares");
                plain = g_error_new_literal(ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                            "field 'spares' of a pool: said, not carried");
                g_assert_null(atrium_error_field(plain));
                other = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_FAILED, "x");
                atrium_error_set_field(other, "spares"); /* another domain carries nothing */
                g_assert_null(atrium_error_field(other));
                atrium_set_field_error(&longer, ATRIUM_ERROR_UNKNOWN_FIELD, big, "no such field");
                g_assert_null(atrium_error_field(longer)); /* a client's long name is not echoed */
                atrium_set_field_error(NULL, ATRIUM_ERROR_INVALID, "x", "nobody asked");
                {
                        g_autoptr(JsonNode) body = json_error_body(copy);
                        g_autoptr(JsonNode) none = json_error_body(plain);
                        JsonObject *err = json_object_get_object_member(json_node_get_object(body),
                                                                        "error");
                        JsonObject *err2 = json_object_get_object_member(
                                json_node_get_object(none), "error");
                        g_assert_cmpstr(json_object_get_string_member(err, "field"), ==, "spares");
                        g_assert_false(json_object_has_member(err2, "field"));
                }
        }
}

static void test_self_signed(void)
{
        g_autofree char *dir = testutil_tmpdir();
        g_autofree char *tls = g_build_filename(dir, "tls", NULL);
        g_autofree char *cert = g_build_filename(tls, "cert.pem", NULL);
        g_autofree char *key = g_build_filename(tls, "key.pem", NULL);
        g_autofree char *fp1 = NULL, *fp2 = NULL;
        g_autoptr(GError) error = NULL;
        GStatBuf st;

        g_assert_true(tls_ensure_self_signed(tls, &error));
        g_assert_no_error(error);
        fp1 = tls_cert_fingerprint(cert, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(strlen(fp1), ==, 32 * 3 - 1);
        g_assert_cmpint(g_stat(key, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0600);
        /* A second call keeps the existing pair. */
        g_assert_true(tls_ensure_self_signed(tls, &error));
        fp2 = tls_cert_fingerprint(cert, &error);
        g_assert_cmpstr(fp1, ==, fp2);
        g_assert_null(tls_cert_fingerprint(key, &error));
        testutil_rmdir(dir);
}

/* The hosts' CA issues a host a certificate for its own key: it verifies against the CA, for
 * server and client use, with the host's name and address; a bad public key is refused. */
static void test_host_certs(void)
{
        g_autofree char *dir = testutil_tmpdir();
        g_autofree char *tls = g_build_filename(dir, "tls", NULL);
        g_autofree char *ca_path = g_build_filename(tls, "hosts-ca.pem", NULL);
        g_autofree char *key = NULL, *pub = NULL, *pem = NULL, *ca_pem = NULL;
        g_autoptr(GError) error = NULL;
        BIO *b;
        X509 *cert, *ca;
        X509_STORE *store;
        X509_STORE_CTX *ctx;

        g_assert_true(tls_key_new(&key, &pub, &error));
        g_assert_nonnull(strstr(key, "PRIVATE KEY"));
        g_assert_nonnull(strstr(pub, "PUBLIC KEY"));
        pem = tls_host_cert_issue(tls, pub, "h1", "10.1.2.3", &error);
        g_assert_no_error(error);
        g_assert_true(g_file_get_contents(ca_path, &ca_pem, NULL, NULL));
        b = BIO_new_mem_buf(pem, -1);
        cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        b = BIO_new_mem_buf(ca_pem, -1);
        ca = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
        g_assert_nonnull(cert);
        g_assert_nonnull(ca);
        store = X509_STORE_new();
        X509_STORE_add_cert(store, ca);
        ctx = X509_STORE_CTX_new();
        X509_STORE_CTX_init(ctx, store, cert, NULL);
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
        g_assert_cmpint(X509_verify_cert(ctx), ==, 1);
        X509_STORE_CTX_cleanup(ctx);
        X509_STORE_CTX_init(ctx, store, cert, NULL);
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
        g_assert_cmpint(X509_verify_cert(ctx), ==, 1);
        g_assert_cmpint(X509_check_ip_asc(cert, "10.1.2.3", 0), ==, 1);
        g_assert_cmpint(X509_check_host(cert, "h1", 0, 0, NULL), ==, 1);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        X509_free(cert);
        X509_free(ca);
        g_assert_null(tls_host_cert_issue(tls, "not a key", "h1", "10.1.2.3", &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
        testutil_rmdir(dir);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/util/names", test_names);
        g_test_add_func("/util/text", test_text);
        g_test_add_func("/util/ids", test_ids);
        g_test_add_func("/util/hostport", test_hostport);
        g_test_add_func("/util/pidfile", test_pidfile);
        g_test_add_func("/util/random", test_random);
        g_test_add_func("/log/line", test_log_line);
        g_test_add_func("/json/depth", test_json_depth);
        g_test_add_func("/json/body", test_json_body);
        g_test_add_func("/error/table", test_error_table);
        g_test_add_func("/tls/self-signed", test_self_signed);
        g_test_add_func("/tls/host-certs", test_host_certs);
        return g_test_run();
}
