/* Storage on a host: volumes (directories of disk images) and media storages (directories of
 * ISOs). Every path a command names is a directory plus one file name; the directory must lie
 * under one of the agent's storage roots (agent.storage_roots) and the file must stay inside
 * it: no '/', no '..', no symbolic link leading out. Images are made with qemu-img, run
 * without a shell. */
#pragma once
#include <json-glib/json-glib.h>

/* The canonical form of DIR when it is an existing directory under one of ROOTS (NULL-
 * terminated), else NULL with an error saying why. */
char *storage_dir(const char *const *roots, const char *dir, GError **error);
/* DIR/NAME, checked as above. must_exist: the file must be there (and be a regular file). */
char *storage_path(const char *const *roots, const char *dir, const char *name,
                   gboolean must_exist, GError **error);

/* The backing file named in a qcow2 header (NULL when none), from the file's first bytes.
 * FALSE when the bytes are not a qcow2 header or the name is malformed. Pure: fuzzed. */
gboolean storage_qcow2_backing(const guint8 *head, gsize len, char **backing, GError **error);

/* {volume, free_bytes, total_bytes, images: [{name, bytes, format, backing}]} */
JsonObject *storage_volume_list(const char *const *roots, const char *dir, GError **error);
/* {media, isos: [{name, bytes}]} */
JsonObject *storage_media_list(const char *const *roots, const char *dir, GError **error);
/* Free bytes (for unprivileged use) of the file system holding PATH, and its size in *total;
 * -1 when it cannot be read. */
gint64 storage_space(const char *path, gint64 *total);

/* The real path of a host block device a guest may be given: it must be a block device, and
 * be (or lie under) one of ALLOWED; else NULL with a forbidden or invalid error. */
char *storage_block_device(const char *const *allowed, const char *path, GError **error);

/* New empty qcow2 disk of size_gb GiB. */
gboolean storage_blank_create(const char *path, gint64 size_gb, GError **error);
/* A template base image NAME in DIR from SOURCE (a disk of a stopped guest, in a volume): a
 * qcow2 copy made read-only. */
gboolean storage_base_create(const char *const *roots, const char *dir, const char *name,
                             const char *source_dir, const char *source_name, GError **error);
/* The bytes of an empty qcow2 (v3, 64 KiB clusters) overlay of a qcow2 image named backing
 * with that virtual size; FALSE when one cluster of L1 table cannot map it. Pure: tested
 * against qemu-img check. */
gboolean storage_qcow2_overlay_layout(guint64 virtual_size, const char *backing, guint8 **out,
                                      gsize *len, GError **error);
/* A qcow2 overlay NAME in DIR backed by BASE (in the same directory). */
gboolean storage_overlay_create(const char *const *roots, const char *dir, const char *name,
                                const char *base, GError **error);
/* Deletes image NAME from DIR; refused while another image of DIR is backed by it, or while
 * in_use (paths of running guests' disks) names it. */
gboolean storage_image_delete(const char *const *roots, const char *dir, const char *name,
                              const char *const *in_use, GError **error);
