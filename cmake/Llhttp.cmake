# SPDX-License-Identifier: MIT
# llhttp's C sources, from Debian's node-llhttp package (installed, or unpacked by
# scripts/setup.sh into /opt/reqmon/llhttp), built into a static library.
find_path(LLHTTP_SRC_DIR llhttp.c
  PATHS /usr/share/llhttp /opt/reqmon/llhttp/usr/share/llhttp NO_DEFAULT_PATH)
find_path(LLHTTP_INCLUDE_DIR llhttp.h
  PATHS /usr/share/include/llhttp /opt/reqmon/llhttp/usr/share/include/llhttp NO_DEFAULT_PATH)
if(NOT LLHTTP_SRC_DIR OR NOT LLHTTP_INCLUDE_DIR)
  message(FATAL_ERROR "llhttp sources not found: run scripts/setup.sh (it unpacks Debian's node-llhttp)")
endif()
add_library(llhttp STATIC
  ${LLHTTP_SRC_DIR}/llhttp.c ${LLHTTP_SRC_DIR}/api.c ${LLHTTP_SRC_DIR}/http.c)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
set_target_properties(llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 99)
target_compile_options(llhttp PRIVATE -O3 -w)
add_library(reqmon::llhttp ALIAS llhttp)
