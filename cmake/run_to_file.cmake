# cmake -DPROG=/path/to/program -DARGS="a|b" -DOUT=file -P run_to_file.cmake
# Runs a just-built program and writes its standard output to OUT (replaced
# only on success), for generated files such as the man pages.  Arguments
# are separated by "|" (a ";" would split the custom command's line).
string(REPLACE "|" ";" _args "${ARGS}")
# A sanitizer build's leak report must not fail a documentation step; the
# tests judge leaks.
set(ENV{ASAN_OPTIONS} "detect_leaks=0")
execute_process(COMMAND ${PROG} ${_args}
  OUTPUT_FILE ${OUT}.tmp
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  file(REMOVE ${OUT}.tmp)
  message(FATAL_ERROR "${PROG} ${ARGS} failed (${_rc})")
endif()
file(RENAME ${OUT}.tmp ${OUT})
