/* cmd_check.c - (in progress) */
