/* cmd_cache.c - (in progress) */
