# The KEYS section of hookrelay.conf.5.scd (from "# KEYS" to the next top-level
# heading) must equal `hookrelay --config-reference=man`, which the option table
# in src/config/cfg_table.c generates. Run with -DBIN= -DPAGE=.
execute_process(COMMAND ${BIN} --config-reference=man OUTPUT_VARIABLE generated
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BIN} --config-reference=man failed")
endif()
file(READ ${PAGE} page)
string(FIND "${page}" "# KEYS\n\n" start)
string(FIND "${page}" "\n# FILES" end)
if(start LESS 0 OR end LESS start)
  message(FATAL_ERROR "${PAGE}: no \"# KEYS\" ... \"# FILES\" block")
endif()
math(EXPR start "${start} + 8")
math(EXPR len "${end} - ${start}")
string(SUBSTRING "${page}" ${start} ${len} committed)
string(APPEND committed "\n") # the blank line before "# FILES"
if(NOT committed STREQUAL generated)
  message(FATAL_ERROR "docs/man/hookrelay.conf.5.scd is stale: replace its KEYS section with "
    "`hookrelay --config-reference=man`")
endif()
