/* Callgrind client requests for esp-instructions. Outside valgrind each is a few no-op instructions. */
#ifndef CCALLGRIND_H
#define CCALLGRIND_H

/* Sets callgrind's event counters to zero. */
void cg_zero(void);
/* Writes the counts since the last zero or dump to a new dump file whose description names `what`, then zeroes. */
void cg_dump(const char *what);
/* 1 when running under valgrind. */
int cg_running(void);

#endif
