/* rent_and_run.c - the C client library (include/muster/client.h) end to
 * end: rent a cluster, run a small task graph on it while watching its
 * events, print the results, release it.
 *
 *   rent_and_run CLIENT_ENDPOINT EVENT_ENDPOINT [GPU_MODEL]
 *
 * Over CURVE (a broker started with --key), set MUSTER_BROKER_KEY to the
 * broker's public key and MUSTER_KEY to your key pair file (muster keygen).
 * Exits 0 when every task succeeded. Every call returns -1 with a reason in
 * the mu_error on failure; replies are freed with wire_free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "muster/client.h"
#include "wire.h"

static int fail(const char *what, const mu_error *err)
{
    fprintf(stderr, "rent_and_run: %s: %s\n", what, err->text);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: rent_and_run CLIENT_ENDPOINT EVENT_ENDPOINT [GPU_MODEL]\n");
        return 2;
    }
    mu_error err;
    /* Keys, when the broker wants them. */
    muster_curve curve, *cv = NULL;
    key_pair kp;
    const char *server = getenv("MUSTER_BROKER_KEY"), *keyfile = getenv("MUSTER_KEY");
    if (server && *server && keyfile && *keyfile) {
        if (key_pair_load(keyfile, &kp, &err) < 0)
            return fail("MUSTER_KEY", &err);
        curve = (muster_curve){server, kp.public_key, kp.secret_key};
        cv = &curve;
    }
    muster_client *c = muster_client_create_curve(argv[1], 10000, cv, &err);
    if (!c)
        return fail("connect", &err);

    /* Rent: two workers with one GPU of the model each, for an hour. */
    char *models[] = {argc > 3 ? argv[3] : "RTX 4090"};
    Muster__ClusterSpec spec = MUSTER__CLUSTER_SPEC__INIT;
    spec.gpu_models = models;
    spec.n_gpu_models = 1;
    spec.workers = 2;
    spec.hours = 1;
    Muster__Envelope *rep, *not_met = NULL;
    Muster__Status st;
    if (muster_create_cluster(c, &spec, "example", &rep, &not_met, &st, &err) < 0) {
        /* NOT_MET comes with why, and the nearest requests that would work. */
        if (not_met)
            fprintf(stderr, "rent_and_run: %s\n", not_met->not_met->explanation);
        wire_free(not_met);
        return fail("create cluster", &err);
    }
    char cid[64];
    snprintf(cid, sizeof(cid), "%s", rep->cluster_reply->cluster->id);
    wire_free(rep);
    printf("cluster %s\n", cid);
    /* Tasks may be submitted at once: they start as members acknowledge. */

    /* Watch it: subscribe before acting, so nothing is missed. */
    char topic[80];
    snprintf(topic, sizeof(topic), "task.%s", cid);
    muster_events *ev = muster_events_open_curve(argv[2], topic, cv, &err);
    if (!ev)
        return fail("events", &err);

    /* A graph: two shards (one GPU each), then a report after both. */
    char *shard0[] = {"sh", "-c", "echo shard 0 on GPU $CUDA_VISIBLE_DEVICES > out; cat out"};
    char *shard1[] = {"sh", "-c", "echo shard 1 on GPU $CUDA_VISIBLE_DEVICES > out; cat out"};
    char *report[] = {"echo", "both shards done"};
    char *after[] = {"s0", "s1"};
    Muster__TaskSpec t[3];
    Muster__TaskSpec *tp[3] = {&t[0], &t[1], &t[2]};
    for (int i = 0; i < 3; i++)
        muster__task_spec__init(&t[i]);
    t[0].name = "s0";
    t[0].argv = shard0;
    t[0].n_argv = 3;
    t[0].gpus = 1;
    t[0].result_file = "out";
    t[1].name = "s1";
    t[1].argv = shard1;
    t[1].n_argv = 3;
    t[1].gpus = 1;
    t[1].result_file = "out";
    t[2].name = "report";
    t[2].argv = report;
    t[2].n_argv = 2;
    t[2].after = after;
    t[2].n_after = 2;
    Muster__SubmitTasksRequest sq = MUSTER__SUBMIT_TASKS_REQUEST__INIT;
    sq.cluster_id = cid;
    sq.tasks = tp;
    sq.n_tasks = 3;
    if (muster_submit_tasks(c, &sq, &rep, &st, &err) < 0)
        return fail("submit", &err);
    uint32_t first = rep->submit_tasks_reply->first;
    wire_free(rep);

    /* Events as they come; a poll of the counts settles it either way
     * (events are fire-and-forget: a slow subscriber may miss some). */
    int done = 0, failed = 0;
    for (int round = 0; round < 300 && done + failed < 3; round++) {
        Muster__Envelope *e = NULL;
        if (muster_events_next(ev, 100, &e, &err) == 0 && e) {
            printf("event %s task %u %s\n", e->event->topic, e->event->task, e->event->detail);
            wire_free(e);
        }
        Muster__ListTasksRequest lq = MUSTER__LIST_TASKS_REQUEST__INIT;
        lq.cluster_id = cid;
        lq.limit = 1;
        if (muster_list_tasks(c, &lq, &rep, &st, &err) == 0) {
            done = (int)rep->list_tasks_reply->counts->succeeded;
            failed = (int)(rep->list_tasks_reply->counts->failed +
                           rep->list_tasks_reply->counts->cancelled);
            wire_free(rep);
        }
    }
    for (uint32_t n = first; n < first + 2; n++)
        if (muster_get_task(c, cid, n, &rep, &st, &err) == 0) {
            const Muster__TaskInfo *ti = rep->task_reply->task;
            printf("task %u %s: %.*s", n, ti->state, (int)ti->result.len,
                   (const char *)ti->result.data);
            wire_free(rep);
        }
    muster_events_close(ev);
    if (muster_release_cluster(c, cid, "example done", &rep, &st, &err) == 0)
        wire_free(rep);
    muster_client_destroy(c);
    printf("%d succeeded, %d failed\n", done, failed);
    return done == 3 ? 0 : 1;
}
