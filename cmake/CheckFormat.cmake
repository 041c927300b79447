# cmake -DCLANG_FORMAT=... -DROOT=... -P CheckFormat.cmake
# Fails if any C++ source under src/, tests/, web/ or bench/ differs from clang-format's output.
file(GLOB_RECURSE files
     ${ROOT}/src/*.cc ${ROOT}/src/*.h ${ROOT}/tests/*.cc ${ROOT}/tests/*.h
     ${ROOT}/web/*.cc ${ROOT}/web/*.h ${ROOT}/bench/*.cc ${ROOT}/bench/*.h)
list(FILTER files EXCLUDE REGEX "/node_modules/")
execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${files}
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang-format differences (run clang-format -i on these files):\n${err}")
endif()
