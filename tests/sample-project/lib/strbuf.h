#ifndef STRBUF_H
#define STRBUF_H
#include <stddef.h>
struct strbuf { char *buf; size_t len, cap; };
void strbuf_add(struct strbuf *sb, const char *s);
#endif
