#include "config.h"

#include <stdio.h>
#include <string.h>

#include "data/dtype_mix.h"

/* Entry a comes before b: more tensors, then the name. */
static int before(const DtypeMix *m, size_t a, size_t b)
{
	if (m->v[a].count != m->v[b].count)
		return m->v[a].count > m->v[b].count;
	return strcmp(m->v[a].name, m->v[b].name) < 0;
}

void dtype_mix_add(DtypeMix *m, const char *name)
{
	size_t i = 0;
	while (i < m->n && strcmp(m->v[i].name, name))
		i++;
	if (i == m->n) {
		if (m->n == DTYPE_MIX_MAX) {
			i = m->n - 1;
		} else {
			snprintf(m->v[i].name, sizeof m->v[i].name, "%s", name);
			m->v[i].count = 0;
			m->n++;
		}
	}
	m->v[i].count++;
	m->total++;
	/* One count grew: move the entry forward past those it now beats. */
	for (; i > 0 && before(m, i, i - 1); i--) {
		DtypeCount t = m->v[i];
		m->v[i] = m->v[i - 1];
		m->v[i - 1] = t;
	}
}

void dtype_mix_format(const DtypeMix *m, char *buf, size_t len)
{
	size_t k = 0;
	if (!len)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < m->n && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "%s%s %zu", i ? ", " : "", m->v[i].name,
				      m->v[i].count);
}
