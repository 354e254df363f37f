/* dns_mock.c - (in progress) */
