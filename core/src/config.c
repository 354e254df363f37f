/* config.c - (in progress) */
