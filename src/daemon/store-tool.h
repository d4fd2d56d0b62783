/* atriumd store …: database work with no daemon running (store-tool.c). */
#pragma once

/* argv[0] is "store". The process's exit code. */
int store_tool_main(int argc, char **argv);
