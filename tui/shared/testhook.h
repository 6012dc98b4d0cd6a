#ifndef ROPEFOLD_TUI_SHARED_TESTHOOK_H
#define ROPEFOLD_TUI_SHARED_TESTHOOK_H

#include <stddef.h>

#include "data/fold_job.h"

/* Test hooks: read from the environment here, in tui/, and nowhere else;
 * the jobs of data/ get them as callbacks.
 *
 * ROPEFOLD_TEST_STOP=open: the process stops itself (SIGSTOP) once its
 * checkpoints are open (fold: and copied into the temporary output) and
 * before it reads the first layer, so that a test can change the files
 * under it (tests/truncate.sh truncates one), then continue it with
 * SIGCONT: a real concurrent change, at a point the test chooses.
 *
 * ROPEFOLD_TEST_FAIL, a fold's injected failures: layer:N fails the run
 * after N layers are written, kill:N kills the process there (nothing
 * cleans up); commit fails once every temporary is written, before
 * anything is published (an interrupted commit); pause:FILE creates
 * FILE.paused there and waits until FILE exists (at most a minute), so
 * that a test can run a second fold to the same OUT, or send a signal, at
 * exactly that point. */
void testhook_stop(const char *point);

/* testhook_stop("open"), as the callback a job calls once its checkpoints
 * are open (WorkloadSpec.opened, FoldHooks.started). */
void testhook_open(void *unused);

/* ROPEFOLD_TEST_FAIL's layer:N and kill:N once `written` layers are
 * stored: -1 with one line in err when the run is to fail. */
int testhook_fold_layer(size_t written, char *err, size_t errlen);

/* A fold's hooks with ROPEFOLD_TEST_FAIL's: before_publish when it is set,
 * layer_done (testhook_fold_layer) unless the caller has its own, which
 * then calls testhook_fold_layer itself; started stops at
 * ROPEFOLD_TEST_STOP=open. */
void testhook_fold_hooks(FoldHooks *h);

#endif
