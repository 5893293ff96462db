# Generates, from lib/lua, the scripts as the library sends them and what
# the library knows of each, so that a script declares its call once:
#
#   OUT_C  each script's text (prelude.lua first for the scripts declaring
#          @policy) with its SHA1, so the library can EVALSHA without loading
#          first; the scripts' table (tkm__scripts) and the calls' table
#          (tkm__calls: arguments and reply fields), as lib/script.h types
#          them.
#   OUT_H  the ids of the scripts (TKM__SCRIPT_<NAME>) and of the calls
#          (TKM__CALL_<NAME>), and the index of every reply field
#          (TKM__<CALL>_<FIELD> and TKM__<CALL>_NFIELDS; in a row,
#          TKM__<CALL>_ROW_<FIELD> and TKM__<CALL>_ROW_NFIELDS): C reads
#          replies by these names, never by position.
#
# The declarations, in each script's comments:
#
#   -- @keys pool guard      the key sets the script takes, in KEYS order:
#                            pool (8 keys, prelude.lua), guard (4 keys,
#                            recovery.lua); or none
#   -- @policy               ARGV[1..13] are the policy and op[] is
#                            ARGV[14..] (prelude.lua, which is prepended);
#                            without it the operation's arguments are ARGV
#   -- @call NAME(ARGS) -> {FIELDS}           a reply of exactly FIELDS
#   -- @call NAME(ARGS) -> {FIELDS} {ROW}...  FIELDS, then rows of ROW
#   -- @call NAME(ARGS) -> {FIELDS, ...}      FIELDS, then what the caller
#                                             reads itself
#
# A script's first line may be Redis 7's shebang, `#!lua` or `#!lua
# flags=no-writes` (a read-only script: Redis runs it under CLIENT PAUSE
# WRITE and on replicas, and refuses any write it tries); it stays the first
# line of the text sent, before the prelude, and the scripts' table says
# no_writes.
#
# NAME is the script's name, or SCRIPT.COMMAND when the script serves several
# calls: op[1] is then COMMAND, sent by the library, and ARGS start at op[2].
# ARGS name the operation's arguments in order; a last NAME... takes any
# number.  A declaration continues on the comment lines right after it that
# are indented further ("--   ").
#
# Usage: cmake -DLUA_DIR=... -DOUT_C=... -DOUT_H=... -DOPS=acquire,... -P embed_lua.cmake

cmake_minimum_required(VERSION 3.18) # policies in -P mode (IN_LIST)

function(tkm_lua_fail msg)
  message(FATAL_ERROR "embed_lua: ${op}.lua: ${msg}")
endfunction()

# "a, b, c" -> a;b;c, each checked to be a lower-case identifier.
function(tkm_lua_names text out what)
  string(STRIP "${text}" text)
  string(REPLACE "," ";" items "${text}")
  set(names "")
  foreach(item IN LISTS items)
    string(STRIP "${item}" item)
    if(NOT item MATCHES "^[a-z][a-z0-9_]*(\\.\\.\\.)?$" AND NOT item STREQUAL "...")
      tkm_lua_fail("${call_name}: '${item}' is not a ${what} name")
    endif()
    if(item IN_LIST names)
      tkm_lua_fail("${call_name}: ${what} '${item}' is named twice")
    endif()
    list(APPEND names "${item}")
  endforeach()
  set(${out} "${names}" PARENT_SCOPE)
endfunction()

# A C array of the names, or NULL when there are none.
function(tkm_lua_array var prefix names out)
  if(names STREQUAL "")
    set(${out} "NULL" PARENT_SCOPE)
    return()
  endif()
  set(items "")
  foreach(n IN LISTS names)
    string(APPEND items "\"${n}\", ")
  endforeach()
  string(REGEX REPLACE ", $" "" items "${items}")
  string(APPEND c_tables "static const char *const ${prefix}_${var}[] = {${items}};\n")
  set(c_tables "${c_tables}" PARENT_SCOPE)
  set(${out} "${prefix}_${var}" PARENT_SCOPE)
endfunction()

# The fields' indices (macros: plain ints, comparable across calls), then
# their count.
function(tkm_lua_indices prefix names)
  set(e "")
  set(i 0)
  foreach(n IN LISTS names)
    string(TOUPPER "${n}" up)
    string(APPEND e "#define ${prefix}_${up} ${i}\n")
    math(EXPR i "${i} + 1")
  endforeach()
  string(APPEND e "#define ${prefix}_NFIELDS ${i}\n")
  string(APPEND h_fields "${e}")
  set(h_fields "${h_fields}" PARENT_SCOPE)
endfunction()

# The @call held in `pending` is complete: check it, add it to the tables.
macro(tkm_lua_call)
  string(REGEX REPLACE "[ \t]+" " " d "${pending}")
  set(pending "")
  if(NOT d MATCHES "^@call ([a-z_.]+)\\(([^()]*)\\) -> {([^{}]*)}( {([^{}]*)}\\.\\.\\.)?$")
    tkm_lua_fail("cannot read '${d}' (see cmake/embed_lua.cmake)")
  endif()
  set(call_name "${CMAKE_MATCH_1}")
  set(call_args "${CMAKE_MATCH_2}")
  set(call_fields "${CMAKE_MATCH_3}")
  set(call_row "${CMAKE_MATCH_5}")
  set(has_row 0)
  if(NOT "${CMAKE_MATCH_4}" STREQUAL "")
    set(has_row 1)
  endif()
  if(call_name STREQUAL op)
    set(command "NULL")
  elseif(call_name MATCHES "^${op}\\.([a-z_]+)$")
    set(command "\"${CMAKE_MATCH_1}\"")
  else()
    tkm_lua_fail("@call ${call_name}: a call of this script is named ${op} or ${op}.COMMAND")
  endif()
  string(TOUPPER "${call_name}" call_id)
  string(REPLACE "." "_" call_id "${call_id}")
  if(call_id IN_LIST all_calls)
    tkm_lua_fail("@call ${call_name}: TKM__CALL_${call_id} is declared twice")
  endif()
  list(APPEND all_calls ${call_id})
  list(APPEND script_commands "${command}")

  tkm_lua_names("${call_args}" args "argument")
  set(args_open 0)
  list(LENGTH args nargs)
  if(nargs GREATER 0)
    list(GET args -1 last)
    if(last MATCHES "\\.\\.\\.$")
      set(args_open 1)
      math(EXPR nargs "${nargs} - 1")
    endif()
  endif()
  foreach(a IN LISTS args)
    if(a MATCHES "\\.\\.\\." AND NOT a STREQUAL last)
      tkm_lua_fail("@call ${call_name}: only the last argument may repeat")
    endif()
  endforeach()
  set(fixed ${nargs})
  if(NOT command STREQUAL "NULL")
    math(EXPR fixed "${fixed} + 1")
  endif()
  if(fixed GREATER args_max)
    set(args_max ${fixed})
  endif()

  tkm_lua_names("${call_fields}" fields "reply field")
  set(open 0)
  list(FIND fields "..." dots)
  if(dots GREATER -1)
    list(LENGTH fields nf)
    math(EXPR lastf "${nf} - 1")
    if(NOT dots EQUAL lastf OR has_row)
      tkm_lua_fail("@call ${call_name}: '...' ends a reply without rows")
    endif()
    list(REMOVE_AT fields ${dots})
    set(open 1)
  endif()
  foreach(f IN LISTS fields)
    if(f MATCHES "\\.\\.\\.")
      tkm_lua_fail("@call ${call_name}: reply field '${f}'")
    endif()
  endforeach()
  list(LENGTH fields nfields)
  set(row "")
  set(nrow 0)
  if(has_row)
    tkm_lua_names("${call_row}" row "row field")
    list(LENGTH row nrow)
    if(nrow EQUAL 0 OR "..." IN_LIST row)
      tkm_lua_fail("@call ${call_name}: a row needs named fields")
    endif()
  endif()

  string(TOLOWER "${call_id}" lower)
  tkm_lua_array(fields ${lower} "${fields}" fields_c)
  tkm_lua_array(row ${lower} "${row}" row_c)
  string(APPEND h_fields "\n/* ${d} */\n")
  tkm_lua_indices(TKM__${call_id} "${fields}")
  if(has_row)
    tkm_lua_indices(TKM__${call_id}_ROW "${row}")
  endif()
  string(APPEND h_calls "    TKM__CALL_${call_id},\n")
  string(APPEND c_calls "    {\"${call_name}\", TKM__SCRIPT_${script_id}, ${command}, ${nargs}, ${args_open},\n")
  string(APPEND c_calls "     ${nfields}, ${fields_c}, ${nrow}, ${row_c}, ${open}},\n")
endmacro()

file(READ "${LUA_DIR}/prelude.lua" prelude)
if(prelude MATCHES "^#!")
  message(FATAL_ERROR "embed_lua: prelude.lua: a shebang belongs to the scripts, not the prelude")
endif()
set(c_texts "")
set(c_tables "")
set(c_scripts "")
set(c_calls "")
set(h_scripts "")
set(h_calls "")
set(h_fields "")
set(all_calls "")
set(args_max 0)
string(REPLACE "," ";" OPS "${OPS}")
foreach(op IN LISTS OPS)
  file(READ "${LUA_DIR}/${op}.lua" text)
  string(TOUPPER "${op}" script_id)
  set(shebang "")
  set(no_writes 0)
  if(text MATCHES "^#!")
    if(NOT text MATCHES "^(#!lua( flags=[a-z-]+(,[a-z-]+)*)?\n)")
      tkm_lua_fail("the first line is not '#!lua' or '#!lua flags=...'")
    endif()
    set(shebang "${CMAKE_MATCH_1}")
    string(LENGTH "${shebang}" n)
    string(SUBSTRING "${text}" ${n} -1 text)
    if(shebang MATCHES "[=,]no-writes[,\n]")
      set(no_writes 1)
    endif()
  endif()

  # The declarations, line by line: a copy without what CMake lists treat
  # specially (";", "\", and "[" "]", which would join lines).
  set(flat "${text}")
  foreach(special IN ITEMS "\\" "[" "]")
    string(REPLACE "${special}" "_" flat "${flat}")
  endforeach()
  string(REPLACE ";" "_" flat "${flat}")
  string(REPLACE "\n" ";" lines "${flat}")
  set(keys "")
  set(have_keys 0)
  set(policy 0)
  set(pending "")
  set(script_commands "")
  foreach(line IN LISTS lines)
    if(NOT pending STREQUAL "" AND line MATCHES "^--[ ][ ]+(.*)$")
      string(APPEND pending " ${CMAKE_MATCH_1}")
      continue()
    endif()
    if(NOT pending STREQUAL "")
      tkm_lua_call()
    endif()
    if(line MATCHES "^-- @keys( .*)?$")
      string(STRIP "${CMAKE_MATCH_1}" k)
      if(have_keys)
        tkm_lua_fail("@keys is declared twice")
      elseif(k STREQUAL "pool")
        set(keys "TKM__KEYS_POOL")
      elseif(k STREQUAL "guard")
        set(keys "TKM__KEYS_GUARD")
      elseif(k STREQUAL "pool guard")
        set(keys "TKM__KEYS_POOL | TKM__KEYS_GUARD")
      elseif(k STREQUAL "none")
        set(keys "0")
      else()
        tkm_lua_fail("@keys ${k}: pool, guard, pool guard or none")
      endif()
      set(have_keys 1)
    elseif(line MATCHES "^-- @policy$")
      set(policy 1)
    elseif(line MATCHES "^-- @call ")
      string(REGEX REPLACE "^-- " "" pending "${line}")
    elseif(line MATCHES "^ *-- *@")
      tkm_lua_fail("unknown declaration '${line}'")
    endif()
  endforeach()
  if(NOT pending STREQUAL "")
    tkm_lua_call()
  endif()
  if(NOT have_keys)
    tkm_lua_fail("no @keys declaration")
  endif()
  if(script_commands STREQUAL "")
    tkm_lua_fail("no @call declaration")
  endif()
  list(LENGTH script_commands ncalls)
  if(ncalls GREATER 1 AND "NULL" IN_LIST script_commands)
    tkm_lua_fail("a script with several calls names each SCRIPT.COMMAND")
  endif()
  if(policy AND NOT keys MATCHES "^TKM__KEYS_POOL")
    tkm_lua_fail("@policy needs @keys pool: the prelude reads the pool's keys")
  endif()

  if(policy)
    set(text "${prelude}\n${text}")
  endif()
  set(text "${shebang}${text}")
  string(SHA1 sha "${text}")
  string(REPLACE "\\" "\\\\" esc "${text}")
  string(REPLACE "\"" "\\\"" esc "${esc}")
  string(REPLACE "\n" "\\n\"\n\"" esc "${esc}")
  string(APPEND c_texts "static const char script_${op}[] =\n\"${esc}\";\n\n")
  string(APPEND c_scripts "    {\"${op}\", \"${sha}\", script_${op}, ${keys}, ${policy}, ${no_writes}},\n")
  string(APPEND h_scripts "    TKM__SCRIPT_${script_id},\n")
endforeach()

set(gen "/* Generated from lib/lua by cmake/embed_lua.cmake: do not edit. */\n")
file(WRITE "${OUT_C}.tmp"
  "${gen}#include \"script.h\"\n\n${c_texts}${c_tables}\n"
  "const tkm__script tkm__scripts[TKM__SCRIPT_COUNT] = {\n${c_scripts}};\n\n"
  "const tkm__call_decl tkm__calls[TKM__CALL_COUNT] = {\n${c_calls}};\n")
file(WRITE "${OUT_H}.tmp"
  "${gen}#ifndef TKM_SCRIPTS_H\n#define TKM_SCRIPTS_H\n\n"
  "typedef enum tkm__script_id {\n${h_scripts}    TKM__SCRIPT_COUNT\n} tkm__script_id;\n\n"
  "typedef enum tkm__call_id {\n${h_calls}    TKM__CALL_COUNT\n} tkm__call_id;\n\n"
  "/* The most operation arguments of a call, the command included (without\n"
  " * the repeats of a last NAME... argument). */\n"
  "#define TKM__CALL_ARGS_MAX ${args_max}\n${h_fields}\n#endif\n")
foreach(out IN ITEMS "${OUT_C}" "${OUT_H}")
  execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${out}.tmp" "${out}")
  file(REMOVE "${out}.tmp")
endforeach()
