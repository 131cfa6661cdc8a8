#ifndef SAMPLE_CONFIG_H
#define SAMPLE_CONFIG_H
#define SAMPLE_VERSION "1.0"
/* A computed include: the platform header is chosen by a macro. */
#define SAMPLE_STR(x) #x
#define SAMPLE_XSTR(x) SAMPLE_STR(x)
#define SAMPLE_PASTE_HEADER(p) SAMPLE_XSTR(sample/platform_##p.h)
#define SAMPLE_PLATFORM_HEADER(p) SAMPLE_PASTE_HEADER(p)
#endif
