#ifndef ROPEFOLD_DATA_PUBLISH_H
#define ROPEFOLD_DATA_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Putting a finished temporary in place, and clearing away the temporaries
 * of runs that died. A temporary for the file NAME in folder DIR is
 * DIR/.NAME.tmp-PID-XXXXXX (a file, or a folder for an HF checkpoint): PID
 * is the process writing it, XXXXXX what mkstemp/mkdtemp fill in. */

/* Rename tmp to final_path. Without replace an existing final_path is
 * never replaced, even one created a moment ago by another process: the
 * call fails with errno EEXIST. That is renameat2's RENAME_NOREPLACE, or
 * on a file system without it link + unlink for a file, and for a folder
 * a plain rename (which replaces nothing but an empty folder). 0, or -1
 * with errno set. */
int publish_rename(const char *tmp, const char *final_path, bool replace, bool folder);

/* The temporary's name for NAME in dir by process pid, up to and without
 * the XXXXXX ("DIR/.NAME.tmp-PID-"). 0, or -1 when it does not fit. */
int publish_temp_prefix(char *buf, size_t len, const char *dir, const char *name, long pid);

/* In folder dir, remove the temporaries for NAME whose process is gone
 * (no process of that id on this machine) and in which nothing has
 * changed for stale_seconds before now (the newest modification time in
 * a temporary folder). Returns how many were removed. */
size_t publish_remove_stale(const char *dir, const char *name, time_t now, long stale_seconds);

/* Remove a folder, the files in it and its subfolders (symlinks are
 * removed, never followed). */
void publish_remove_tree(const char *dir);

#endif
