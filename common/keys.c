/* keys.c - see keys.h. */
#include "keys.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "alloc.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "strutil.h"

int key_pair_generate(key_pair *kp, mu_error *errp)
{
    if (!zmq_has("curve"))
        return errprintf(errp, "this libzmq was built without CURVE security");
    if (zmq_curve_keypair(kp->public_key, kp->secret_key) < 0)
        return errprintf(errp, "zmq_curve_keypair: %s", zmq_strerror(errno));
    return 0;
}

bool key_valid(const char *s)
{
    uint8_t raw[32];
    return s && strlen(s) == 40 && zmq_z85_decode(raw, s) != NULL;
}

int key_pair_load(const char *path, key_pair *kp, mu_error *errp)
{
    char *text = fs_read_file(path, 4096, NULL, errp);
    if (!text)
        return -1;
    cJSON *j = cJSON_Parse(text);
    mu_free(text);
    const char *pub = NULL, *sec = NULL;
    int rc = 0;
    if (!j || !cJSON_IsObject(j))
        rc = errprintf(errp, "%s: not a key pair file (a JSON object)", path);
    else if (json_get_string(j, "public_key", true, &pub, path, errp) < 0 ||
             json_get_string(j, "secret_key", true, &sec, path, errp) < 0)
        rc = -1;
    else if (!key_valid(pub) || !key_valid(sec))
        rc = errprintf(errp, "%s: a key is not 40 characters of Z85", path);
    if (rc == 0) {
        char derived[KEY_TEXT_LEN];
        if (zmq_curve_public(derived, sec) < 0 || strcmp(derived, pub) != 0)
            rc = errprintf(errp, "%s: the public key does not belong to the secret key", path);
    }
    if (rc == 0) {
        str_copy(kp->public_key, pub, sizeof(kp->public_key));
        str_copy(kp->secret_key, sec, sizeof(kp->secret_key));
    }
    cJSON_Delete(j);
    return rc;
}

int key_pair_save(const char *path, const key_pair *kp, mu_error *errp)
{
    char text[160];
    int n = snprintf(text, sizeof(text), "{\"public_key\": \"%s\", \"secret_key\": \"%s\"}\n",
                     kp->public_key, kp->secret_key);
    /* O_EXCL: a key pair is an identity, never replaced by accident. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errprintf(errp, "%s: %s", path, strerror(errno));
    ssize_t w = write(fd, text, (size_t)n);
    int rc = 0;
    if (w != n || fsync(fd) < 0)
        rc = errprintf(errp, "%s: %s", path, w < 0 || w == n ? strerror(errno) : "short write");
    close(fd);
    if (rc < 0)
        unlink(path);
    return rc;
}

int key_pair_load_or_create(const char *path, key_pair *kp, bool *created, mu_error *errp)
{
    *created = false;
    struct stat st;
    if (stat(path, &st) == 0)
        return key_pair_load(path, kp, errp);
    if (errno != ENOENT)
        return errprintf(errp, "%s: %s", path, strerror(errno));
    if (key_pair_generate(kp, errp) < 0 || key_pair_save(path, kp, errp) < 0)
        return -1;
    *created = true;
    return 0;
}
