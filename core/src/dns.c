/* dns.c - (in progress) */
