/* The evaluation engine in float64 (core/engine/template.h). */
#include "config.h"

#define ENGINE_F64 1
#include "core/engine/template.h"
