#ifndef SAMPLE_TABLE_H
#define SAMPLE_TABLE_H
#include <stddef.h>
size_t table_sum(const int *v, size_t n);
#endif
