# acheron_add_library(NAME SOURCES ... DEPS ... [PRIVATE_DEPS ...])
# Declares the module library acheron_<NAME> with the alias acheron::<NAME>,
# installed and exported as acheron::<NAME>.
function(acheron_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target acheron_${name})
  add_library(${target} ${ARG_SOURCES})
  add_library(acheron::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name}
                                             OUTPUT_NAME acheron_${name})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/src>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  acheron_set_warnings(${target})
  install(TARGETS ${target} EXPORT acheronTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/acheron/${name}
          FILES_MATCHING PATTERN "*.hh")
endfunction()

function(acheron_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic
                         -Wno-missing-field-initializers)
  if(ACHERON_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# Compile options of every test executable (and of the precompiled header
# they share, which needs the same ones).
function(acheron_set_test_options target)
  acheron_set_warnings(${target})
  # Test code itself needs no -O2 (the libraries under test keep it): -O1
  # compiles it about a third faster in the default build.
  target_compile_options(${target} PRIVATE $<$<CONFIG:RelWithDebInfo>:-O1>)
  # Some dependencies (gRPC's) add -pthread, which defines _REENTRANT: every
  # test compiles with it so that all of them can use the one header.
  target_compile_options(${target} PRIVATE -pthread)
endfunction()

# acheron_add_test(NAME SOURCES ... DEPS ... [TIMEOUT seconds])
# A GoogleTest executable registered with ctest (one ctest entry per test
# case), labelled "unit".
function(acheron_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main
                                        GTest::gmock)
  acheron_set_test_options(${name})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/test/support)
  target_precompile_headers(${name} REUSE_FROM acheron_test_pch)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  # Test names start with the module (test/<module>), e.g. "optics.Engine.X",
  # so `ctest -R '^optics\.'` selects a module. (gtest_discover_tests cannot
  # pass a list of labels through to ctest, so labels are not used for that.)
  get_filename_component(module ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    TEST_PREFIX "${module}."
    PROPERTIES LABELS unit TIMEOUT ${ARG_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()
