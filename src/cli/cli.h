/* The subcommands' entry points, dispatched from main.c. */
#ifndef MAMORI_CLI_H
#define MAMORI_CLI_H

int cli_serve_main(int argc, char **argv);
int cli_check_config_main(int argc, char **argv);
int cli_rules_main(int argc, char **argv);
int cli_notify_main(int argc, char **argv);
int cli_intel_main(int argc, char **argv);
int cli_ddos_main(int argc, char **argv);
int cli_ddos_replay(int argc, char **argv);
int cli_mail_main(int argc, char **argv);

#endif
