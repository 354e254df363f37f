/* sts_policy.c - (in progress) */
