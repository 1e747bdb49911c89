#include <hutopia/version.h>

#include <hutopia/export.h>

extern "C" HUT_EXPORT const char* hut_version(void) { return HUT_VERSION_STRING; }
