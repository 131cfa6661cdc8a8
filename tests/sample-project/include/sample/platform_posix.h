#define SAMPLE_PLATFORM_NAME "posix"
