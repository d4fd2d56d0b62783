/* Names the platform makes: desktops from a pool's name pattern. A pattern holds exactly one
 * number placeholder, "{n}" or "{n:W}" (zero-padded to W digits, 1 to 6), so that two
 * desktops of a pool never get the same name; the rest is name text. Pure: golden-tested
 * (tests/data/naming.*). */
#pragma once
#include <glib.h>

#define POOL_PATTERN_MAX 48

/* TRUE for a usable pattern; else an ATRIUM_ERROR_INVALID error saying what is wrong. */
gboolean pool_pattern_valid(const char *pattern, GError **error);
/* The name of desktop number n (from 1) of a valid pattern. */
char *pool_desktop_name(const char *pattern, guint n);
/* The pattern a pool without one uses: POOL-{n}. */
char *pool_default_pattern(const char *pool);

/* A desktop's overlay: "atrium-INST-desktop-ID.qcow2", the name of its libvirt domain with
 * .qcow2, in the template's volume beside the version's base image. The agent confines both
 * to its storage roots; these only say where they are meant to be. */
char *desktop_overlay_name(const char *installation, gint64 desktop_id);
/* The overlay's full path in a volume directory, and the base image it is backed by. */
char *desktop_overlay_path(const char *volume_path, const char *overlay);
