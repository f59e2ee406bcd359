/* The exit status of every chom tool (SPEC.md section 2, chom.7 EXIT STATUS).
 */
#ifndef CHOM_EXITCODE_H
#define CHOM_EXITCODE_H

enum chom_exit {
	CHOM_EXIT_OK = 0,    /* success; healthy; canary promoted */
	CHOM_EXIT_FAIL = 1,  /* failed; the previous safe state is in place */
	CHOM_EXIT_USAGE = 2, /* usage or configuration error; nothing changed */
	CHOM_EXIT_BUSY = 3,  /* another run holds the lock; nothing changed */
	CHOM_EXIT_UNSAFE = 4, /* failed, and the safe state is not restored */
	CHOM_EXIT_SIGINT = 130,
	CHOM_EXIT_SIGTERM = 143,
};

#endif
