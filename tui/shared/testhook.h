#ifndef ROPEFOLD_TUI_SHARED_TESTHOOK_H
#define ROPEFOLD_TUI_SHARED_TESTHOOK_H

/* Test hooks: read from the environment here, in tui/, and nowhere else.
 *
 * ROPEFOLD_TEST_STOP=open: the process stops itself (SIGSTOP) once its
 * checkpoints are open (fold: and copied into the temporary output) and
 * before it reads the first layer, so that a test can change the files
 * under it (tests/truncate.sh truncates one), then continue it with
 * SIGCONT: a real concurrent change, at a point the test chooses. */
void testhook_stop(const char *point);

/* testhook_stop("open"), as the callback a job calls once its checkpoints
 * are open (data/workload.h: WorkloadSpec.opened). */
void testhook_open(void *unused);

#endif
