/*
** Command entry points: each takes argv with argv[0] = the command name
** and returns the process exit status (0 ok, 1 runtime error, 2 usage).
*/
#ifndef LUASPY_CMD_H
#define LUASPY_CMD_H

int cmd_dump(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_heap(int argc, char **argv);
int cmd_alloc(int argc, char **argv);
int cmd_leaks(int argc, char **argv);
int cmd_jit(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_offcpu(int argc, char **argv);
int cmd_syscalls(int argc, char **argv);
int cmd_top(int argc, char **argv);

#endif
