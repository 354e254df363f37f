/* sts_txt.c - (in progress) */
