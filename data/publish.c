#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/publish.h"

/* How deep a temporary folder is searched (shards in subfolders). */
#define TREE_DEPTH 16

int publish_rename(const char *tmp, const char *final_path, bool replace, bool folder)
{
	if (replace)
		return rename(tmp, final_path);
#ifdef HAVE_RENAMEAT2
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final_path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -1;
#endif
	if (folder)
		return rename(tmp, final_path);
	if (link(tmp, final_path) != 0)
		return -1;
	unlink(tmp);
	return 0;
}

int publish_temp_prefix(char *buf, size_t len, const char *dir, const char *name, long pid)
{
	int k = snprintf(buf, len, "%s/.%s.tmp-%ld-", dir, name, pid);
	return k < 0 || (size_t)k >= len ? -1 : 0;
}

/* The process of a temporary's name ".NAME.tmp-PID-XXXXXX", or 0 when
 * the name is not one. */
static long temp_pid(const char *entry, const char *name)
{
	size_t n = strlen(name);
	if (entry[0] != '.' || strncmp(entry + 1, name, n) || strncmp(entry + 1 + n, ".tmp-", 5))
		return 0;
	const char *p = entry + 1 + n + 5;
	size_t digits = strspn(p, "0123456789");
	if (digits == 0 || digits > 10 || p[digits] != '-')
		return 0;
	const char *x = p + digits + 1;
	if (strlen(x) != 6 || strspn(x, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789") != 6)
		return 0;
	long pid = strtol(p, NULL, 10);
	return pid > 0 && pid <= INT_MAX ? pid : 0;
}

static bool process_alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* The newest modification time at or below path (not following symlinks). */
static time_t newest_mtime(const char *path, int depth)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 0;
	time_t t = st.st_mtime;
	DIR *d = S_ISDIR(st.st_mode) && depth > 0 ? opendir(path) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[PATH_MAX];
		if (snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= (int)sizeof p)
			continue;
		time_t u = newest_mtime(p, depth - 1);
		if (u > t)
			t = u;
	}
	if (d)
		closedir(d);
	return t;
}

static void remove_tree_depth(const char *dir, int depth)
{
	DIR *d = depth > 0 ? opendir(dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[PATH_MAX];
		if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
			continue;
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree_depth(p, depth - 1);
		else
			unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

void publish_remove_tree(const char *dir)
{
	remove_tree_depth(dir, TREE_DEPTH);
}

size_t publish_remove_stale(const char *dir, const char *name, time_t now, long stale_seconds)
{
	DIR *d = opendir(dir);
	size_t removed = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		long pid = temp_pid(e->d_name, name);
		char p[PATH_MAX];
		if (!pid || process_alive(pid) ||
		    snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p ||
		    now - newest_mtime(p, TREE_DEPTH) < stale_seconds)
			continue;
		struct stat st;
		if (lstat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			publish_remove_tree(p);
		else
			unlink(p);
		removed += lstat(p, &st) != 0;
	}
	if (d)
		closedir(d);
	return removed;
}
