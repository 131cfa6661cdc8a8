#define SAMPLE_PLATFORM_NAME "other"
