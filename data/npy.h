#ifndef ROPEFOLD_DATA_NPY_H
#define ROPEFOLD_DATA_NPY_H

#include <stddef.h>

/* Write rows x cols float32 values (row-major) as a NumPy .npy file,
 * format 1.0, C order, little-endian '<f4', so that numpy.load reads a
 * (rows, cols) array. Written to a temporary beside path and renamed:
 * nothing half-written is left. Returns 0 or -1 with one line in err. */
int npy_write_f32(const char *path, const float *v, size_t rows, size_t cols, char *err,
		  size_t errlen);

#endif
