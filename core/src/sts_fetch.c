/* sts_fetch.c - (in progress) */
