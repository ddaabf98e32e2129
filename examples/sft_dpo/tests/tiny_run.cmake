# A tiny configuration of the pipeline, end to end, twice: the first run trains every stage of
# every method and writes the results; the second must load every stage from its checkpoint.
#   cmake -DEXE=<ogpsa_sft_dpo> -DOUT=<folder> -P tiny_run.cmake
set(tiny --out "${OUT}" --base-steps 40 --sft-steps 4 --dpo-steps 4 --base-batch 8 --sft-batch 4 --dpo-batch 4
         --width 32 --layers 1 --heads 2 --mlp 64 --sweep-points 2 --reference-batches 2 --rank 2
         --overhead-steps 2 --pipelines sft,dpo,sft-dpo --threads 1)
file(REMOVE_RECURSE "${OUT}")

function(run_tiny output_var)
  execute_process(COMMAND "${EXE}" ${tiny} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the pipeline failed (exit code ${rc}):\n${out}\n${err}")
  endif()
  set(${output_var} "${out}" PARENT_SCOPE)
endfunction()

run_tiny(first)
string(REGEX MATCH "Results: [^\n]*results.csv, [^\n]*sweep.csv, [^\n]*pareto.svg\n$" last_line "${first}")
if(NOT last_line)
  message(FATAL_ERROR "the last line does not name the result files:\n${first}")
endif()
foreach(file results.csv sweep.csv pareto.svg data/base.json data/sft.json data/dpo.json data/reference.json data/eval.json)
  if(NOT EXISTS "${OUT}/${file}")
    message(FATAL_ERROR "${OUT}/${file} was not written")
  endif()
endforeach()
# One row per pipeline and method (one seed), after the header.
file(STRINGS "${OUT}/results.csv" rows)
execute_process(COMMAND "${EXE}" --list-methods OUTPUT_VARIABLE methods)
string(REGEX MATCHALL "\n  [a-z-]+ " method_names "\n${methods}")
list(LENGTH method_names method_count)
list(LENGTH rows row_count)
math(EXPR expected "3 * ${method_count} + 1")
if(NOT row_count EQUAL expected)
  message(FATAL_ERROR "results.csv has ${row_count} lines, expected ${expected} (3 pipelines x ${method_count} methods + header)")
endif()

run_tiny(second)
if(NOT second MATCHES "\n0 stage\\(s\\) trained in this run")
  message(FATAL_ERROR "the second run retrained stages instead of loading their checkpoints:\n${second}")
endif()
