# docs/configuration.md must equal `hookrelay --config-reference` (generated from the option table).
execute_process(COMMAND ${BIN} --config-reference OUTPUT_VARIABLE generated RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "hookrelay --config-reference failed: ${rc}")
endif()
file(READ ${DOC} committed)
if(NOT generated STREQUAL committed)
  message(FATAL_ERROR "docs/configuration.md is stale: regenerate it with "
    "`hookrelay --config-reference > docs/configuration.md`")
endif()
