#include "sample/table.h"

size_t table_sum(const int *v, size_t n)
{
	size_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += (size_t)v[i];
	return s;
}
