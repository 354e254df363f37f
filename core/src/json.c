/* json.c - (in progress) */
