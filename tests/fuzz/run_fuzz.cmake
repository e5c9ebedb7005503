# Runs one libFuzzer target briefly on a fresh copy of the seed corpus (ctest helper).
#   cmake -DFUZZER=path -DWORK_DIR=dir -DSEEDS="glob|glob" -DDICT=file -DSECONDS=n -P run_fuzz.cmake
# Everything it writes (corpus additions, crash-* artifacts) stays in WORK_DIR, in the build tree.
file(REMOVE_RECURSE "${WORK_DIR}/corpus")
file(MAKE_DIRECTORY "${WORK_DIR}/corpus")
string(REPLACE "|" ";" seed_globs "${SEEDS}")
set(count 0)
foreach(glob IN LISTS seed_globs)
  file(GLOB seeds LIST_DIRECTORIES false "${glob}")
  foreach(seed IN LISTS seeds)
    # Flatten: seeds from different folders may share a name.
    math(EXPR count "${count} + 1")
    get_filename_component(base "${seed}" NAME)
    configure_file("${seed}" "${WORK_DIR}/corpus/${count}-${base}" COPYONLY)
  endforeach()
endforeach()
message(STATUS "${count} seed files copied to ${WORK_DIR}/corpus")

set(args -max_total_time=${SECONDS} -rss_limit_mb=2048 -print_final_stats=1 -max_len=65536
         -artifact_prefix=${WORK_DIR}/)
if(DICT AND EXISTS "${DICT}")
  list(APPEND args -dict=${DICT})
endif()
execute_process(COMMAND "${FUZZER}" ${args} "${WORK_DIR}/corpus"
                WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); crash inputs are in ${WORK_DIR}")
endif()
