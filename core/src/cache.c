/* cache.c - (in progress) */
