/* SPDX-License-Identifier: MIT */
/* `secho keygen`: create a static X25519 key pair for `secure`. */
#ifndef SECHO_CMD_KEYGEN_H
#define SECHO_CMD_KEYGEN_H

/* Runs `secho keygen [-o FILE]`; argv[0] is the subcommand name. Returns the process exit
 * code: 0 done, 1 runtime failure (file exists, cannot write), 2 usage error. Prints. */
int keygen_main(int argc, char **argv);

#endif
