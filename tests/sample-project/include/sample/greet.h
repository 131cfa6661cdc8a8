#ifndef SAMPLE_GREET_H
#define SAMPLE_GREET_H
#include "sample/config.h"
const char *greeting(void);
#endif
