#include <stdio.h>
#include "sample/greet.h"
#include "sample/table.h"
#include "strbuf.h"

double shapes_total(void);
double stats_mean_of_areas(void);

int main(void)
{
	static const int v[] = {1, 2, 3, 4};
	struct strbuf sb = {0};
	strbuf_add(&sb, greeting());
	printf("%s\nsum=%zu total=%.2f mean=%.2f\n", sb.buf, table_sum(v, 4),
	       shapes_total(), stats_mean_of_areas());
	return 0;
}
