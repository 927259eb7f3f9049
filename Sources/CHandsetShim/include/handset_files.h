/* Persistent state for the handset: whole-file reads and crash-safe replacement. */
#ifndef HANDSET_FILES_H
#define HANDSET_FILES_H

#include <stddef.h>
#include <stdint.h>

/* Replaces dir/name with data: write dir/name.tmp, fsync it, rename over dir/name, fsync dir.
 * A crash at any point leaves either the old or the new file, never a mix. Returns 0 or -errno. */
int hs_file_replace_atomic(const char *dir, const char *name, const uint8_t *data, size_t len);
/* Reads up to cap bytes of path; returns the byte count or -errno (-ENOENT when absent). */
long hs_file_read(const char *path, uint8_t *out, size_t cap);
/* Reads up to cap bytes of a regular file only its owner may use: fills *mode (permission bits) and *owner
 * (uid) from the open file, and refuses a file with any group or other permission (-EPERM, nothing read) or
 * one that is not a regular file (-EINVAL). Returns the byte count or -errno. */
long hs_file_read_private(const char *path, uint8_t *out, size_t cap, uint32_t *mode, uint32_t *owner);
/* Removes dir/name and fsyncs dir; an absent file is no error. Returns 0 or -errno. */
int hs_file_remove(const char *dir, const char *name);
/* Creates dir (and no parents) if missing; returns 0 or -errno. */
int hs_mkdir(const char *dir);

#endif
