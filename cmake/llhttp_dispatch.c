/* SPDX-License-Identifier: MIT */
/*
 * llhttp's parser built twice on x86-64 (cmake/Llhttp.cmake): as it is, and with SSE4.2, where
 * llhttp's own generated code scans header values and URLs 16 bytes at a time (_mm_cmpestri).
 * The portable build cannot assume SSE4.2, so the copy to run is chosen once, from the CPU.
 * Both copies are the same state machine (same states, same numbering): a parser initialised by
 * one is run by the other.
 */
#include "llhttp.h"

typedef int (*llhttp_execute_fn)(llhttp__internal_t* s, const char* p, const char* endp);

int llhttp__internal_execute_base(llhttp__internal_t* s, const char* p, const char* endp);
int llhttp__internal_execute_sse42(llhttp__internal_t* s, const char* p, const char* endp);

static llhttp_execute_fn llhttp_pick(void)
{
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") ? llhttp__internal_execute_sse42
                                          : llhttp__internal_execute_base;
}

int llhttp__internal_execute(llhttp__internal_t* s, const char* p, const char* endp)
{
  static llhttp_execute_fn impl;
  llhttp_execute_fn f = __atomic_load_n(&impl, __ATOMIC_RELAXED);

  if (!f) {
    f = llhttp_pick();
    __atomic_store_n(&impl, f, __ATOMIC_RELAXED);
  }
  return f(s, p, endp);
}
