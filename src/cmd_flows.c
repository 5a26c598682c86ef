#include "cli.h"
int cmd_flows(int argc, char **argv) { (void)argc; (void)argv; return EX_SOFTWARE; }
