/* verify.c - (in progress) */
