/* SPDX-License-Identifier: MIT */
/* `secho keygen`: create a static X25519 key pair for `secure`, show a key file's public key,
 * forget a server's known_hosts lines. */
#ifndef SECHO_CMD_KEYGEN_H
#define SECHO_CMD_KEYGEN_H

/* Runs `secho keygen [-o FILE]`, `secho keygen -y [-k FILE]` or `secho keygen -R HOST:PORT
 * [--known-hosts FILE]`; argv[0] is the subcommand name. Returns the process exit code: 0 done
 * (also when -R finds nothing to remove), 1 runtime failure (file exists, cannot read or
 * write, -o's directory missing), 2 usage error. Prints. */
int keygen_main(int argc, char **argv);

#endif
