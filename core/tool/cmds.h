/*
 * cmds.h - the subcommands of danests(1)
 *
 * Each gets its own arguments with argv[0] the command name and returns
 * the process exit status.
 */
#ifndef DANESTS_CMDS_H
#define DANESTS_CMDS_H

int cmd_cache(int argc, char **argv, const char *cache_dir);
int cmd_check(int argc, char **argv);
int cmd_probe(int argc, char **argv);
/* argv[0] is "report", argv[1] its subcommand */
int cmd_report(int argc, char **argv);
/* cache_dir as for cmd_cache; argv[0] is "refresh" */
int cmd_cache_refresh(int argc, char **argv, const char *cache_dir);
/* cache_dir as for cmd_cache; argv[0] is "stats" */
int cmd_stats(int argc, char **argv, const char *cache_dir);
/* "danests report send"; argv[0] is "send" */
int cmd_report_send(int argc, char **argv);

#endif /* DANESTS_CMDS_H */
