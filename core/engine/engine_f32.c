/* The evaluation engine in float32 (core/engine/template.h). */
#include "config.h"

#define ENGINE_F64 0
#include "core/engine/template.h"
