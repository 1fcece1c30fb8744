// The target that builds the test executables' shared precompiled header
// (see test/CMakeLists.txt); it runs no tests of its own.
#include <gtest/gtest.h>
