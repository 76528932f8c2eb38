/* main.c - musterd: parse the configuration, run the broker until a signal. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "config.h"
#include "log.h"
#include "pow.h"

/* Set by the signal handler, read by the loop: the one global a daemon
 * with signals cannot avoid. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int main(int argc, char **argv)
{
    broker_config cfg;
    config_action action;
    mu_error err;
    if (broker_config_from_args(&cfg, argc, argv, &action, &err) < 0) {
        fprintf(stderr, "musterd: %s\n", err.text);
        return 2;
    }
    if (action == CONFIG_HELP) {
        broker_config_usage(stdout);
        return 0;
    }
    if (action == CONFIG_VERSION) {
        printf("musterd %s (protocol 1)\n", MUSTER_VERSION);
        return 0;
    }
    if (action == CONFIG_CHECK || action == CONFIG_DUMP) {
        /* Quiet: the report (or the JSON) is the output. */
        log_init("musterd", LOG_WARN, stderr);
        int rc = action == CONFIG_CHECK ? broker_check(&cfg, stdout, &err)
                                        : broker_dump(&cfg, stdout, &err);
        if (rc < 0) {
            fprintf(stderr, "musterd: %s\n", err.text);
            return 1;
        }
        return 0;
    }
    log_init("musterd", cfg.log_level, stderr);
    pow_init(); /* the fast hash for checking proofs of work */

    /* No SA_RESTART: zmq_poll must return EINTR so the loop sees the flag. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    broker *b = broker_create(&cfg, &err);
    if (!b) {
        fprintf(stderr, "musterd: %s\n", err.text);
        return 1;
    }
    int rc = broker_run(b, &stop_requested, &err);
    if (rc < 0)
        log_error("broker.failed", "reason=\"%s\"", err.text);
    broker_destroy(b);
    log_info("broker.stopped", "status=%d", rc < 0 ? 1 : 0);
    return rc < 0 ? 1 : 0;
}
