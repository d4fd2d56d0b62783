/* Helpers for Atrium's GTest suites. */
#pragma once
#include <glib.h>
#include <glib/gstdio.h>

/* A new empty temporary directory, removed by testutil_rmdir(). */
char *testutil_tmpdir(void);
void testutil_rmdir(const char *dir);
/* Compare text with the golden file tests/data/NAME; ATRIUM_TEST_REGENERATE=1 rewrites it. */
void testutil_golden(const char *name, const char *text);
/* Path of a file in the source tree (ATRIUM_SOURCE_DIR, set by meson). */
char *testutil_source_path(const char *rel);
