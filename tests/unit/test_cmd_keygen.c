/* SPDX-License-Identifier: MIT */
/* `secho keygen`: writes a loadable 0600 key, never overwrites, exit codes per SPEC. */
#include "check.h"
#include "cmd_keygen.h"
#include "keys.h"

#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

static int run(int argc, const char *const *argv)
{
    char *copy[8];
    for (int i = 0; i < argc; i++)
        copy[i] = (char *)argv[i];
    copy[argc] = NULL;
    return keygen_main(argc, copy);
}

int main(void)
{
    char tmp[] = "/tmp/secho-keygen-XXXXXX", path[300], err[256], cfg[300];
    uint8_t priv[32], pub[32];
    struct stat st;
    if (!mkdtemp(tmp))
        return 1;
    snprintf(path, sizeof(path), "%s/sub/k.key", tmp);

    const char *a1[] = {"keygen", "-o", path};
    /* An explicit path whose directory is missing is refused, as ssh-keygen -f does. */
    CHECK_INT(run(3, a1), 1);
    CHECK_INT(stat(path, &st), -1);
    snprintf(cfg, sizeof(cfg), "%s/sub", tmp);
    CHECK_INT(mkdir(cfg, 0700), 0);
    CHECK_INT(run(3, a1), 0);
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    CHECK_INT(keys_load(path, priv, pub, err, sizeof(err)), 0);
    CHECK_INT(run(3, a1), 1); /* never overwrites */
    CHECK_INT(keys_load(path, priv, pub, err, sizeof(err)), 0);

    /* Default path: the client identity under XDG_CONFIG_HOME. */
    setenv("XDG_CONFIG_HOME", tmp, 1);
    const char *a2[] = {"keygen"};
    CHECK_INT(run(1, a2), 0);
    snprintf(cfg, sizeof(cfg), "%s/secho/id.key", tmp);
    CHECK_INT(keys_load(cfg, priv, pub, err, sizeof(err)), 0);
    CHECK_INT(stat(cfg, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);

    const char *a3[] = {"keygen", "--bogus"};
    CHECK_INT(run(2, a3), 2);
    const char *a4[] = {"keygen", "extra"};
    CHECK_INT(run(2, a4), 2);
    const char *a5[] = {"keygen", "--help"};
    CHECK_INT(run(2, a5), 0);
    const char *a6[] = {"keygen", "--output=-"};
    CHECK_INT(run(2, a6), 0);

    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    CHECK_INT(system(cmd), 0);
    return CHECK_DONE();
}
