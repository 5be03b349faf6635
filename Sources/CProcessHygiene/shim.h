#ifndef STARPIPE_CPROCESSHYGIENE_SHIM_H
#define STARPIPE_CPROCESSHYGIENE_SHIM_H
#include <sys/prctl.h>
#include <sys/resource.h>

/* No core file (RLIMIT_CORE 0) and not dumpable (no core through a core_pattern pipe either, no ptrace or
   /proc/PID/environ and mem for other processes of the same user): a process that holds a password in memory.
   prctl is variadic, which Swift cannot call. Returns 0 on success. */
static inline int starpipe_forbid_core_dumps(void) {
    struct rlimit none = {0, 0};
    int limit = setrlimit(RLIMIT_CORE, &none);
    int dumpable = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return limit | dumpable;
}
#endif
