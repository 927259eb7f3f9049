#include "ccallgrind.h"

#include <valgrind/callgrind.h>

void cg_zero(void) { CALLGRIND_ZERO_STATS; }
void cg_dump(const char *what) { CALLGRIND_DUMP_STATS_AT(what); }
int cg_running(void) { return RUNNING_ON_VALGRIND ? 1 : 0; }
