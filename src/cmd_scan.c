#include "cli.h"
int cmd_scan(int argc, char **argv) { (void)argc; (void)argv; return EX_SOFTWARE; }
int cmd_explain(int argc, char **argv) { (void)argc; (void)argv; return EX_SOFTWARE; }
