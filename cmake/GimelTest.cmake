# gimel_add_test(NAME name SOURCES a_test.cc ... LIBS lib ... [LABELS l ...])
# Builds a GoogleTest binary and registers each of its tests with ctest.
include(GoogleTest)
function(gimel_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_compile_options(${T_NAME} PRIVATE ${GIMEL_WARNINGS})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${T_NAME} PRIVATE
    GIMEL_SOURCE_DIR="${PROJECT_SOURCE_DIR}" GIMEL_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set(props)
  if(T_LABELS)
    set(props PROPERTIES LABELS "${T_LABELS}")
  endif()
  # DISABLED_ tests are child-process entry points, not tests: keep them out of ctest.
  gtest_discover_tests(${T_NAME} DISCOVERY_TIMEOUT 60 TEST_FILTER "-*.DISABLED_*:DISABLED_*.*"
                       ${props})
endfunction()
