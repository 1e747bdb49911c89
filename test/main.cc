// The one doctest runner for every unit and integration test of libhutopia.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
