#include "cli.h"
int cmd_catalog(int argc, char **argv) { (void)argc; (void)argv; return EX_SOFTWARE; }
