// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * reqmon's kernel side, one BPF object: the hook families, each in its own file around the shared
 * header reqmon.bpf.h, compiled as one unit. (They were linked from separate objects with
 * bpftool gen object, but libbpf 1.1's linker cannot link a kfunc extern, bpf_rdonly_cast, that
 * several objects use.)
 */
#include "maps.bpf.c"
#include "queue.bpf.c"
#include "socket_data.bpf.c"
#include "connections.bpf.c"
#include "processes.bpf.c"
#include "tls.bpf.c"
