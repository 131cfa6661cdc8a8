#include <stdlib.h>
#include <string.h>
#include "strbuf.h"

void strbuf_add(struct strbuf *sb, const char *s)
{
	size_t n = strlen(s);
	if (sb->len + n + 1 > sb->cap) {
		sb->cap = (sb->len + n + 1) * 2;
		sb->buf = realloc(sb->buf, sb->cap);
	}
	memcpy(sb->buf + sb->len, s, n + 1);
	sb->len += n;
}
