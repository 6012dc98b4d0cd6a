#ifndef ROPEFOLD_TUI_CLI_INFO_FAMILY_H
#define ROPEFOLD_TUI_CLI_INFO_FAMILY_H

#include <jansson.h>
#include <stdio.h>

#include "data/model.h"

/* What `ropefold info` adds for the families that add something: the
 * local RoPE base and the layer pattern, sliding windows, soft-caps,
 * longrope and rope_freqs tables, M-RoPE sections, experts. Lines only
 * where the checkpoint has them (text), every key always (JSON; null when
 * absent), so the lines and keys of plain families stay as they were. */

/* The extra text lines, after the rope line. */
void info_family_text(FILE *f, const Model *m);
/* The extra keys: into doc (layer_types, sliding_window, soft-caps, moe)
 * and into its "rope" object (attention_factor, local_theta, longrope,
 * rope_freqs, mrope_section). */
void info_family_json(json_t *doc, const Model *m);

/* Which layers info_layer_ranges lists. */
typedef enum { INFO_SLIDING, INFO_FULL, INFO_SPARSE, INFO_DENSE } InfoLayerSet;
/* "0-1, 3-4, 6" for the layers of the set, "none" when it is empty (cut
 * with "..." when buf is too small): how the lines name layer sets. */
void info_layer_ranges(const Model *m, InfoLayerSet set, char *buf, size_t len);

#endif
