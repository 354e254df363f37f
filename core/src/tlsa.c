/* tlsa.c - (in progress) */
