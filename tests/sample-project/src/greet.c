#include "sample/greet.h"
#include SAMPLE_PLATFORM_HEADER(SAMPLE_PLATFORM)

const char *greeting(void)
{
	return "hello from " SAMPLE_PLATFORM_NAME " (sample " SAMPLE_VERSION ", " __FILE__ ")";
}
