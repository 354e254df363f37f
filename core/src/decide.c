/* decide.c - (in progress) */
