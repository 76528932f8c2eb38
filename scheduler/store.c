/* store.c - see store.h. */
#include "store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"

struct store {
    sqlite3 *db;
    int version;
    bool in_tx;
    sqlite3_stmt *put_worker, *put_uptime, *put_cluster, *del_members, *put_member, *put_change;
    sqlite3_stmt *put_verification, *put_excluded;
    sqlite3_stmt *put_reservation, *put_cluster_resv;
    sqlite3_stmt *put_task, *put_task_output, *get_task_output;
    sqlite3_stmt *put_worker_key;
};

/* --- schema ------------------------------------------------------------------------ */

/* Migration i takes the schema from version i to i + 1. Never edit one
 * that has shipped: add the next. */
static const char *const migrations[] = {
    /* 0 -> 1: workers (what the foundation kept) */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE workers ("
    "  id BLOB PRIMARY KEY CHECK (length(id) = 16),"
    "  registration BLOB NOT NULL," /* the Register message */
    "  registered_at INTEGER NOT NULL,"
    "  uptime_online_h REAL NOT NULL,"
    "  uptime_total_h REAL NOT NULL,"
    "  uptime_at INTEGER NOT NULL);",
    /* 1 -> 2: clusters */
    "CREATE TABLE clusters ("
    "  id BLOB PRIMARY KEY CHECK (length(id) = 16),"
    "  owner TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  spec BLOB NOT NULL," /* the accepted ClusterSpec message */
    "  hours INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL, ready_at INTEGER NOT NULL,"
    "  ends_at INTEGER NOT NULL, ended_at INTEGER NOT NULL,"
    "  provision_deadline INTEGER NOT NULL,"
    "  price_per_hour INTEGER NOT NULL,"
    "  end_reason TEXT NOT NULL);"
    "CREATE TABLE cluster_members ("
    "  cluster BLOB NOT NULL REFERENCES clusters(id),"
    "  seat INTEGER NOT NULL,"
    "  worker BLOB," /* NULL: vacant */
    "  acked INTEGER NOT NULL, lost INTEGER NOT NULL,"
    "  PRIMARY KEY (cluster, seat));"
    "CREATE TABLE cluster_history ("
    "  cluster BLOB NOT NULL REFERENCES clusters(id),"
    "  seq INTEGER NOT NULL,"
    "  at INTEGER NOT NULL, worker BLOB, what TEXT NOT NULL, reason TEXT NOT NULL,"
    "  PRIMARY KEY (cluster, seq));",
    /* 2 -> 3: verification verdicts; workers a cluster lost (reroute) */
    "CREATE TABLE verification ("
    "  worker BLOB PRIMARY KEY REFERENCES workers(id),"
    "  state INTEGER NOT NULL,"
    "  checks INTEGER NOT NULL,"
    "  history BLOB NOT NULL);" /* store_verify_result records, oldest first */
    "ALTER TABLE clusters ADD COLUMN excluded BLOB NOT NULL DEFAULT x'';" /* 16-byte ids */
    "ALTER TABLE clusters ADD COLUMN replaced INTEGER NOT NULL DEFAULT 0;",
    /* 3 -> 4: tasks and their output */
    "CREATE TABLE tasks ("
    "  cluster BLOB NOT NULL REFERENCES clusters(id),"
    "  number INTEGER NOT NULL,"
    "  spec BLOB NOT NULL," /* the accepted TaskSpec message */
    "  state INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL, failures INTEGER NOT NULL, losses INTEGER NOT NULL,"
    "  exit_code INTEGER NOT NULL, signal INTEGER NOT NULL,"
    "  worker BLOB," /* NULL: never ran */
    "  gpu_mask INTEGER NOT NULL,"
    "  submitted_at INTEGER NOT NULL, started_at INTEGER NOT NULL,"
    "  finished_at INTEGER NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  lost_on BLOB NOT NULL," /* 16-byte worker ids */
    "  log_total INTEGER NOT NULL,"
    "  PRIMARY KEY (cluster, number)) WITHOUT ROWID;"
    "CREATE TABLE task_output ("
    "  cluster BLOB NOT NULL,"
    "  number INTEGER NOT NULL,"
    "  result BLOB NOT NULL,"
    "  log BLOB NOT NULL,"
    "  log_offset INTEGER NOT NULL,"
    "  PRIMARY KEY (cluster, number),"
    "  FOREIGN KEY (cluster, number) REFERENCES tasks(cluster, number)) WITHOUT ROWID;",
    /* 4 -> 5: the CURVE key each worker id is bound to */
    "ALTER TABLE workers ADD COLUMN owner_key TEXT NOT NULL DEFAULT '';",
    /* 5 -> 6: reservations (members and lost workers as 16-byte ids), and the
     * reservation a cluster was carved out of */
    "CREATE TABLE reservations ("
    "  id BLOB PRIMARY KEY CHECK (length(id) = 16),"
    "  owner TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  spec BLOB NOT NULL," /* the accepted ClusterSpec message */
    "  hours INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL, ends_at INTEGER NOT NULL, ended_at INTEGER NOT NULL,"
    "  list_price_per_hour INTEGER NOT NULL, price_per_hour INTEGER NOT NULL,"
    "  discount_pct INTEGER NOT NULL,"
    "  end_reason TEXT NOT NULL,"
    "  members BLOB NOT NULL,"
    "  excluded BLOB NOT NULL,"
    "  replaced INTEGER NOT NULL);"
    "ALTER TABLE clusters ADD COLUMN reservation BLOB;", /* NULL: none */
};

static int sql_error(store *st, mu_error *errp, const char *what)
{
    return errprintf(errp, "store: %s: %s", what, sqlite3_errmsg(st->db));
}

static int exec(store *st, const char *sql, mu_error *errp)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        errprintf(errp, "store: %s", msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* The schema version of an open database: 0 for an empty one, -1 when it
 * is not a muster store. */
static int read_version(store *st, mu_error *errp)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM sqlite_master", -1, &q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "not a database (or damaged)");
    int tables = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
    sqlite3_finalize(q);
    if (tables < 0)
        return sql_error(st, errp, "cannot read the schema");
    if (tables == 0)
        return 0;
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1, &q,
                           NULL) != SQLITE_OK)
        return errprintf(errp, "store: the file is a database but not a muster store");
    int v = -1;
    if (sqlite3_step(q) == SQLITE_ROW)
        v = atoi((const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    if (v < 1)
        return errprintf(errp, "store: no schema version: not a muster store");
    return v;
}

static int migrate(store *st, int from, int to, mu_error *errp)
{
    if (exec(st, "BEGIN IMMEDIATE", errp) < 0)
        return -1;
    for (int v = from; v < to; v++) {
        if (exec(st, migrations[v], errp) < 0)
            goto fail;
        char sql[128];
        snprintf(sql, sizeof(sql),
                 "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '%d')", v + 1);
        if (exec(st, sql, errp) < 0)
            goto fail;
    }
    if (exec(st, "COMMIT", errp) < 0)
        goto fail;
    return 0;
fail:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int prepare(store *st, sqlite3_stmt **q, const char *sql, mu_error *errp)
{
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "prepare");
    return 0;
}

store *store_open_version(const char *path, bool full_sync, int version, mu_error *errp)
{
    if (version < 1 || version > STORE_SCHEMA_VERSION)
        return errprintf(errp, "store: no schema version %d", version), NULL;
    store *st = mu_calloc(1, sizeof(*st));
    if (!st)
        return errprintf(errp, "out of memory"), NULL;
    /* No SQLITE_OPEN_CREATE for an existing path, so a typo'd directory is
     * an error rather than a new empty store somewhere else. */
    struct stat sb;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX;
    if (stat(path, &sb) != 0)
        flags |= SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        errprintf(errp, "store %s: %s", path, st->db ? sqlite3_errmsg(st->db) : "cannot open");
        goto error;
    }
    sqlite3_busy_timeout(st->db, 5000);
    int v = read_version(st, errp);
    if (v < 0) {
        errprefix(errp, "%s", path);
        goto error;
    }
    if (v > STORE_SCHEMA_VERSION) {
        errprintf(errp,
                  "store %s: schema version %d is newer than this musterd (%d): upgrade "
                  "musterd",
                  path, v, STORE_SCHEMA_VERSION);
        goto error;
    }
    /* WAL: readers never block the writer, and a commit is one append. */
    char pragma[160];
    snprintf(pragma, sizeof(pragma),
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA foreign_keys=ON;",
             full_sync ? "FULL" : "NORMAL");
    if (exec(st, pragma, errp) < 0 || (v < version && migrate(st, v, version, errp) < 0)) {
        errprefix(errp, "%s", path);
        goto error;
    }
    st->version = v > version ? v : version;
    if (st->version >= 1 &&
        (prepare(st, &st->put_worker,
                 /* An upsert, not a replace: later columns (the bound key)
                  * stay as they are. */
                 "INSERT INTO workers (id, registration, registered_at, uptime_online_h, "
                 "uptime_total_h, uptime_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO "
                 "UPDATE SET registration = excluded.registration, registered_at = "
                 "excluded.registered_at, uptime_online_h = excluded.uptime_online_h, "
                 "uptime_total_h = excluded.uptime_total_h, uptime_at = excluded.uptime_at",
                 errp) < 0 ||
         prepare(st, &st->put_uptime,
                 "UPDATE workers SET uptime_online_h = ?2, uptime_total_h = ?3, uptime_at = ?4 "
                 "WHERE id = ?1",
                 errp) < 0))
        goto error;
    if (st->version >= 2 &&
        (prepare(st, &st->put_cluster,
                 "INSERT OR REPLACE INTO clusters (id, owner, state, spec, hours, created_at, "
                 "ready_at, ends_at, ended_at, provision_deadline, price_per_hour, end_reason) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                 errp) < 0 ||
         prepare(st, &st->del_members, "DELETE FROM cluster_members WHERE cluster = ?1", errp) <
             0 ||
         prepare(st, &st->put_member, "INSERT INTO cluster_members VALUES (?1, ?2, ?3, ?4, ?5)",
                 errp) < 0 ||
         prepare(st, &st->put_change,
                 "INSERT OR REPLACE INTO cluster_history VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 errp) < 0))
        goto error;
    if (st->version >= 3 &&
        (prepare(st, &st->put_verification,
                 "INSERT OR REPLACE INTO verification VALUES (?1, ?2, ?3, ?4)", errp) < 0 ||
         prepare(st, &st->put_excluded,
                 "UPDATE clusters SET excluded = ?2, replaced = ?3 WHERE id = ?1", errp) < 0))
        goto error;
    if (st->version >= 6 &&
        (prepare(st, &st->put_reservation,
                 "INSERT OR REPLACE INTO reservations VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                 "?10, ?11, ?12, ?13, ?14, ?15)",
                 errp) < 0 ||
         prepare(st, &st->put_cluster_resv, "UPDATE clusters SET reservation = ?2 WHERE id = ?1",
                 errp) < 0))
        goto error;
    if (st->version >= 5 && prepare(st, &st->put_worker_key,
                                    "UPDATE workers SET owner_key = ?2 WHERE id = ?1", errp) < 0)
        goto error;
    if (st->version >= 4 &&
        (prepare(st, &st->put_task,
                 "INSERT OR REPLACE INTO tasks VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                 "?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                 errp) < 0 ||
         prepare(st, &st->put_task_output,
                 "INSERT OR REPLACE INTO task_output VALUES (?1, ?2, ?3, ?4, ?5)", errp) < 0 ||
         prepare(st, &st->get_task_output,
                 "SELECT result, log, log_offset FROM task_output WHERE cluster = ?1 AND "
                 "number = ?2",
                 errp) < 0))
        goto error;
    return st;
error:
    store_close(st);
    return NULL;
}

store *store_open(const char *path, bool full_sync, mu_error *errp)
{
    return store_open_version(path, full_sync, STORE_SCHEMA_VERSION, errp);
}

void store_close(store *st)
{
    if (!st)
        return;
    if (st->in_tx)
        store_rollback(st);
    sqlite3_finalize(st->put_worker);
    sqlite3_finalize(st->put_uptime);
    sqlite3_finalize(st->put_cluster);
    sqlite3_finalize(st->del_members);
    sqlite3_finalize(st->put_member);
    sqlite3_finalize(st->put_change);
    sqlite3_finalize(st->put_verification);
    sqlite3_finalize(st->put_excluded);
    sqlite3_finalize(st->put_reservation);
    sqlite3_finalize(st->put_cluster_resv);
    sqlite3_finalize(st->put_task);
    sqlite3_finalize(st->put_task_output);
    sqlite3_finalize(st->get_task_output);
    sqlite3_finalize(st->put_worker_key);
    sqlite3_close(st->db);
    mu_free(st);
}

int store_schema_version(const store *st)
{
    return st->version;
}

/* --- transactions ------------------------------------------------------------------------ */

int store_begin(store *st, mu_error *errp)
{
    if (st->in_tx)
        return 0;
    if (exec(st, "BEGIN IMMEDIATE", errp) < 0)
        return -1;
    st->in_tx = true;
    return 0;
}

int store_commit(store *st, mu_error *errp)
{
    if (!st->in_tx)
        return 0;
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sql_error(st, errp, "commit");
        store_rollback(st);
        return -1;
    }
    st->in_tx = false;
    return 0;
}

void store_rollback(store *st)
{
    if (st->in_tx)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    st->in_tx = false;
}

bool store_in_transaction(const store *st)
{
    return st->in_tx;
}

/* --- writes ------------------------------------------------------------------------------- */

static int step_done(store *st, sqlite3_stmt *q, mu_error *errp, const char *what)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (rc != SQLITE_DONE)
        return sql_error(st, errp, what);
    return 0;
}

static void bind_id(sqlite3_stmt *q, int i, const mu_id *id)
{
    if (id && !id_is_null(id))
        sqlite3_bind_blob(q, i, id->b, 16, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, i);
}

int store_put_worker(store *st, const mu_id *id, const void *reg, size_t len,
                     uint64_t registered_at, const uptime *up, mu_error *errp)
{
    sqlite3_stmt *q = st->put_worker;
    bind_id(q, 1, id);
    sqlite3_bind_blob(q, 2, reg, (int)len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)registered_at);
    sqlite3_bind_double(q, 4, up->online_h);
    sqlite3_bind_double(q, 5, up->total_h);
    sqlite3_bind_int64(q, 6, (sqlite3_int64)up->at);
    return step_done(st, q, errp, "save worker");
}

int store_put_uptime(store *st, const mu_id *id, const uptime *up, mu_error *errp)
{
    sqlite3_stmt *q = st->put_uptime;
    bind_id(q, 1, id);
    sqlite3_bind_double(q, 2, up->online_h);
    sqlite3_bind_double(q, 3, up->total_h);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)up->at);
    return step_done(st, q, errp, "save uptime");
}

int store_put_cluster(store *st, const store_cluster *c, mu_error *errp)
{
    if (st->version < 2)
        return errprintf(errp, "store: schema %d has no clusters", st->version);
    sqlite3_stmt *q = st->put_cluster;
    bind_id(q, 1, &c->id);
    sqlite3_bind_text(q, 2, c->owner, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 3, c->state);
    sqlite3_bind_blob(q, 4, c->spec, (int)c->spec_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 5, c->hours);
    sqlite3_bind_int64(q, 6, (sqlite3_int64)c->created_at);
    sqlite3_bind_int64(q, 7, (sqlite3_int64)c->ready_at);
    sqlite3_bind_int64(q, 8, (sqlite3_int64)c->ends_at);
    sqlite3_bind_int64(q, 9, (sqlite3_int64)c->ended_at);
    sqlite3_bind_int64(q, 10, (sqlite3_int64)c->provision_deadline);
    sqlite3_bind_int64(q, 11, (sqlite3_int64)c->price_uusd_per_hour);
    sqlite3_bind_text(q, 12, c->end_reason ? c->end_reason : "", -1, SQLITE_TRANSIENT);
    if (step_done(st, q, errp, "save cluster") < 0)
        return -1;
    bind_id(st->del_members, 1, &c->id);
    if (step_done(st, st->del_members, errp, "save members") < 0)
        return -1;
    for (size_t i = 0; i < c->n_members; i++) {
        q = st->put_member;
        bind_id(q, 1, &c->id);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)i);
        bind_id(q, 3, &c->members[i].worker);
        sqlite3_bind_int(q, 4, c->members[i].acked);
        sqlite3_bind_int(q, 5, c->members[i].lost);
        if (step_done(st, q, errp, "save member") < 0)
            return -1;
    }
    if (st->version >= 3) {
        q = st->put_excluded;
        bind_id(q, 1, &c->id);
        sqlite3_bind_blob(q, 2, c->excluded ? (const void *)c->excluded : "",
                          (int)(c->n_excluded * sizeof(mu_id)), SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 3, c->replaced);
        if (step_done(st, q, errp, "save lost workers") < 0)
            return -1;
    }
    if (st->version >= 6 && c->has_resv) {
        q = st->put_cluster_resv;
        bind_id(q, 1, &c->id);
        bind_id(q, 2, &c->resv);
        if (step_done(st, q, errp, "save cluster reservation") < 0)
            return -1;
    }
    for (size_t i = 0; i < c->n_history; i++) {
        const store_change *ch = &c->history[i];
        q = st->put_change;
        bind_id(q, 1, &c->id);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)(c->history_seq + i));
        sqlite3_bind_int64(q, 3, (sqlite3_int64)ch->at);
        bind_id(q, 4, &ch->worker);
        sqlite3_bind_text(q, 5, ch->what ? ch->what : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 6, ch->reason ? ch->reason : "", -1, SQLITE_TRANSIENT);
        if (step_done(st, q, errp, "save history") < 0)
            return -1;
    }
    return 0;
}

/* --- reads ---------------------------------------------------------------------------------- */

static void column_id(sqlite3_stmt *q, int col, mu_id *id)
{
    memset(id, 0, sizeof(*id));
    if (sqlite3_column_type(q, col) == SQLITE_BLOB && sqlite3_column_bytes(q, col) == 16)
        memcpy(id->b, sqlite3_column_blob(q, col), 16);
}

static int load_workers(store *st, store_worker_fn fn, void *arg, mu_error *errp)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, registration, registered_at, uptime_online_h, "
                           "uptime_total_h, uptime_at FROM workers ORDER BY registered_at, id",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "load workers");
    int rc = 0, s;
    while (rc == 0 && (s = sqlite3_step(q)) == SQLITE_ROW) {
        mu_id id;
        column_id(q, 0, &id);
        uptime up = {(float)sqlite3_column_double(q, 3), (float)sqlite3_column_double(q, 4),
                     (uint64_t)sqlite3_column_int64(q, 5)};
        rc = fn(arg, &id, sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1),
                (uint64_t)sqlite3_column_int64(q, 2), &up, errp);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = sql_error(st, errp, "load workers");
    sqlite3_finalize(q);
    return rc;
}

/* Members and history of one cluster, into growable arrays. */
static int load_parts(store *st, const mu_id *id, store_member **members, size_t *n_members,
                      store_change history[32], size_t *n_history, uint32_t *first_seq,
                      char **texts, mu_error *errp)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT worker, acked, lost FROM cluster_members WHERE cluster = ?1 "
                           "ORDER BY seat",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "load members");
    bind_id(q, 1, id);
    size_t cap = 0;
    *n_members = 0;
    int s;
    while ((s = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n_members == cap) {
            cap = cap ? cap * 2 : 16;
            store_member *n = mu_realloc(*members, cap * sizeof(*n));
            if (!n) {
                sqlite3_finalize(q);
                return errprintf(errp, "out of memory");
            }
            *members = n;
        }
        store_member *m = &(*members)[(*n_members)++];
        column_id(q, 0, &m->worker);
        m->acked = sqlite3_column_int(q, 1) != 0;
        m->lost = sqlite3_column_int(q, 2) != 0;
    }
    sqlite3_finalize(q);
    if (s != SQLITE_DONE)
        return sql_error(st, errp, "load members");

    /* The last CLUSTER_HISTORY changes are all the core keeps. */
    if (sqlite3_prepare_v2(st->db,
                           "SELECT at, worker, what, reason, seq FROM (SELECT * FROM "
                           "cluster_history WHERE cluster = ?1 ORDER BY seq DESC LIMIT 32) "
                           "ORDER BY seq",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "load history");
    bind_id(q, 1, id);
    *n_history = 0;
    size_t tlen = 0;
    while ((s = sqlite3_step(q)) == SQLITE_ROW && *n_history < 32) {
        if (*n_history == 0)
            *first_seq = (uint32_t)sqlite3_column_int64(q, 4);
        store_change *ch = &history[(*n_history)++];
        ch->at = (uint64_t)sqlite3_column_int64(q, 0);
        column_id(q, 1, &ch->worker);
        /* Copy the texts into one buffer: column pointers die at the next step. */
        const char *what = (const char *)sqlite3_column_text(q, 2);
        const char *reason = (const char *)sqlite3_column_text(q, 3);
        size_t need = strlen(what ? what : "") + strlen(reason ? reason : "") + 2;
        char *nt = mu_realloc(*texts, tlen + need);
        if (!nt) {
            sqlite3_finalize(q);
            return errprintf(errp, "out of memory");
        }
        *texts = nt;
        ch->what = (const char *)(uintptr_t)tlen; /* offsets until the buffer settles */
        strcpy(*texts + tlen, what ? what : "");
        tlen += strlen(what ? what : "") + 1;
        ch->reason = (const char *)(uintptr_t)tlen;
        strcpy(*texts + tlen, reason ? reason : "");
        tlen += strlen(reason ? reason : "") + 1;
    }
    sqlite3_finalize(q);
    for (size_t i = 0; i < *n_history; i++) {
        store_change *ch = &history[i];
        ch->what = *texts + (uintptr_t)ch->what;
        ch->reason = *texts + (uintptr_t)ch->reason;
    }
    return 0;
}

/* The workers a cluster lost, and how many seats were refilled. */
static int load_excluded(store *st, store_cluster *c, mu_id **buf, mu_error *errp)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, "SELECT excluded, replaced FROM clusters WHERE id = ?1", -1, &q,
                           NULL) != SQLITE_OK)
        return sql_error(st, errp, "load lost workers");
    bind_id(q, 1, &c->id);
    int rc = 0;
    if (sqlite3_step(q) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(q, 0);
        if (len % sizeof(mu_id)) {
            rc = errprintf(errp, "store: a cluster's lost workers are %zu bytes", len);
        } else if (len) {
            mu_id *n = mu_realloc(*buf, len);
            if (!n) {
                rc = errprintf(errp, "out of memory");
            } else {
                memcpy(n, sqlite3_column_blob(q, 0), len);
                *buf = n;
                c->excluded = n;
                c->n_excluded = len / sizeof(mu_id);
            }
        }
        c->replaced = (uint32_t)sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    return rc;
}

/* The reservation a cluster was carved out of (schema 6). */
static int load_cluster_resv(store *st, store_cluster *c, mu_error *errp)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, "SELECT reservation FROM clusters WHERE id = ?1", -1, &q,
                           NULL) != SQLITE_OK)
        return sql_error(st, errp, "load cluster reservation");
    bind_id(q, 1, &c->id);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_BLOB) {
        if (sqlite3_column_bytes(q, 0) != (int)sizeof(mu_id)) {
            sqlite3_finalize(q);
            return errprintf(errp, "store: a cluster's reservation id is not 16 bytes");
        }
        memcpy(c->resv.b, sqlite3_column_blob(q, 0), sizeof(mu_id));
        c->has_resv = true;
    }
    sqlite3_finalize(q);
    return 0;
}

/* A blob of 16-byte ids into *buf (grown); NULL/0 when empty. */
static int column_ids(sqlite3_stmt *q, int col, mu_id **buf, const mu_id **out, size_t *n,
                      mu_error *errp)
{
    size_t len = (size_t)sqlite3_column_bytes(q, col);
    *out = NULL;
    *n = 0;
    if (len % sizeof(mu_id))
        return errprintf(errp, "store: a list of ids is %zu bytes", len);
    if (!len)
        return 0;
    mu_id *nb = mu_realloc(*buf, len);
    if (!nb)
        return errprintf(errp, "out of memory");
    memcpy(nb, sqlite3_column_blob(q, col), len);
    *buf = nb;
    *out = nb;
    *n = len / sizeof(mu_id);
    return 0;
}

int store_put_reservation(store *st, const store_reservation *r, mu_error *errp)
{
    if (st->version < 6)
        return errprintf(errp, "store: schema %d has no reservations", st->version);
    sqlite3_stmt *q = st->put_reservation;
    bind_id(q, 1, &r->id);
    sqlite3_bind_text(q, 2, r->owner, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 3, r->state);
    sqlite3_bind_blob(q, 4, r->spec, (int)r->spec_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 5, r->hours);
    sqlite3_bind_int64(q, 6, (sqlite3_int64)r->created_at);
    sqlite3_bind_int64(q, 7, (sqlite3_int64)r->ends_at);
    sqlite3_bind_int64(q, 8, (sqlite3_int64)r->ended_at);
    sqlite3_bind_int64(q, 9, (sqlite3_int64)r->list_uusd_per_hour);
    sqlite3_bind_int64(q, 10, (sqlite3_int64)r->price_uusd_per_hour);
    sqlite3_bind_int64(q, 11, r->discount_pct);
    sqlite3_bind_text(q, 12, r->end_reason ? r->end_reason : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(q, 13, r->members ? (const void *)r->members : "",
                      (int)(r->n_members * sizeof(mu_id)), SQLITE_TRANSIENT);
    sqlite3_bind_blob(q, 14, r->excluded ? (const void *)r->excluded : "",
                      (int)(r->n_excluded * sizeof(mu_id)), SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 15, r->replaced);
    return step_done(st, q, errp, "save reservation");
}

static int load_reservations(store *st, store_reservation_fn fn, void *arg, mu_error *errp)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, owner, state, spec, hours, created_at, ends_at, ended_at, "
                           "list_price_per_hour, price_per_hour, discount_pct, end_reason, "
                           "members, excluded, replaced FROM reservations "
                           "ORDER BY created_at, rowid",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "load reservations");
    mu_id *members = NULL, *excluded = NULL;
    int rc = 0, s;
    while (rc == 0 && (s = sqlite3_step(q)) == SQLITE_ROW) {
        store_reservation r = {0};
        column_id(q, 0, &r.id);
        r.owner = (const char *)sqlite3_column_text(q, 1);
        r.state = sqlite3_column_int(q, 2);
        r.spec = sqlite3_column_blob(q, 3);
        r.spec_len = (size_t)sqlite3_column_bytes(q, 3);
        r.hours = (uint32_t)sqlite3_column_int64(q, 4);
        r.created_at = (uint64_t)sqlite3_column_int64(q, 5);
        r.ends_at = (uint64_t)sqlite3_column_int64(q, 6);
        r.ended_at = (uint64_t)sqlite3_column_int64(q, 7);
        r.list_uusd_per_hour = (uint64_t)sqlite3_column_int64(q, 8);
        r.price_uusd_per_hour = (uint64_t)sqlite3_column_int64(q, 9);
        r.discount_pct = (uint32_t)sqlite3_column_int64(q, 10);
        r.end_reason = (const char *)sqlite3_column_text(q, 11);
        r.replaced = (uint32_t)sqlite3_column_int64(q, 14);
        rc = column_ids(q, 12, &members, &r.members, &r.n_members, errp);
        if (rc == 0)
            rc = column_ids(q, 13, &excluded, &r.excluded, &r.n_excluded, errp);
        if (rc == 0)
            rc = fn(arg, &r, errp);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = sql_error(st, errp, "load reservations");
    sqlite3_finalize(q);
    mu_free(members);
    mu_free(excluded);
    return rc;
}

static int load_clusters(store *st, store_cluster_fn fn, void *arg, mu_error *errp)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT id, owner, state, spec, hours, created_at, ready_at, ends_at, "
                           "ended_at, provision_deadline, price_per_hour, end_reason "
                           "FROM clusters ORDER BY created_at, rowid",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "load clusters");
    store_member *members = NULL;
    store_change history[32];
    char *texts = NULL;
    mu_id *excluded = NULL;
    int rc = 0, s;
    while (rc == 0 && (s = sqlite3_step(q)) == SQLITE_ROW) {
        store_cluster c = {0};
        column_id(q, 0, &c.id);
        c.owner = (const char *)sqlite3_column_text(q, 1);
        c.state = sqlite3_column_int(q, 2);
        c.spec = sqlite3_column_blob(q, 3);
        c.spec_len = (size_t)sqlite3_column_bytes(q, 3);
        c.hours = (uint32_t)sqlite3_column_int64(q, 4);
        c.created_at = (uint64_t)sqlite3_column_int64(q, 5);
        c.ready_at = (uint64_t)sqlite3_column_int64(q, 6);
        c.ends_at = (uint64_t)sqlite3_column_int64(q, 7);
        c.ended_at = (uint64_t)sqlite3_column_int64(q, 8);
        c.provision_deadline = (uint64_t)sqlite3_column_int64(q, 9);
        c.price_uusd_per_hour = (uint64_t)sqlite3_column_int64(q, 10);
        c.end_reason = (const char *)sqlite3_column_text(q, 11);
        rc = load_parts(st, &c.id, &members, &c.n_members, history, &c.n_history, &c.history_seq,
                        &texts, errp);
        if (rc == 0 && st->version >= 3)
            rc = load_excluded(st, &c, &excluded, errp);
        if (rc == 0 && st->version >= 6)
            rc = load_cluster_resv(st, &c, errp);
        if (rc == 0) {
            c.members = members;
            c.history = history;
            rc = fn(arg, &c, errp);
        }
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = sql_error(st, errp, "load clusters");
    sqlite3_finalize(q);
    mu_free(members);
    mu_free(texts);
    mu_free(excluded);
    return rc;
}

int store_load(store *st, store_worker_fn on_worker, store_cluster_fn on_cluster, void *arg,
               mu_error *errp)
{
    return store_load_all(st, on_worker, NULL, on_cluster, arg, errp);
}

int store_load_all(store *st, store_worker_fn on_worker, store_reservation_fn on_reservation,
                   store_cluster_fn on_cluster, void *arg, mu_error *errp)
{
    if (load_workers(st, on_worker, arg, errp) < 0)
        return -1;
    if (on_reservation && st->version >= 6 && load_reservations(st, on_reservation, arg, errp) < 0)
        return -1;
    if (st->version >= 2 && load_clusters(st, on_cluster, arg, errp) < 0)
        return -1;
    return 0;
}

int store_put_verification(store *st, const mu_id *worker, int state, uint32_t checks,
                           const store_verify_result *hist, size_t n, mu_error *errp)
{
    if (st->version < 3)
        return errprintf(errp, "store: schema %d has no verification", st->version);
    /* Fixed little-endian records, so the file reads the same anywhere. */
    uint8_t buf[STORE_VERIFY_HISTORY * STORE_VERIFY_RECORD];
    if (n > STORE_VERIFY_HISTORY)
        n = STORE_VERIFY_HISTORY;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = buf + i * STORE_VERIFY_RECORD;
        uint64_t v[6] = {hist[i].at,     hist[i].expected_ms, hist[i].measured_ms,
                         hist[i].rtt_ms, hist[i].leaf,        0};
        for (int k = 0; k < 8; k++)
            p[k] = (uint8_t)(v[0] >> (8 * k));
        for (int f = 1; f < 5; f++)
            for (int k = 0; k < 4; k++)
                p[8 + (f - 1) * 4 + k] = (uint8_t)(v[f] >> (8 * k));
        p[24] = hist[i].outcome;
        p[25] = hist[i].state;
    }
    sqlite3_stmt *q = st->put_verification;
    bind_id(q, 1, worker);
    sqlite3_bind_int(q, 2, state);
    sqlite3_bind_int64(q, 3, checks);
    sqlite3_bind_blob(q, 4, n ? (const void *)buf : "", (int)(n * STORE_VERIFY_RECORD),
                      SQLITE_TRANSIENT);
    return step_done(st, q, errp, "save verification");
}

int store_load_verification(store *st, store_verification_fn fn, void *arg, mu_error *errp)
{
    if (st->version < 3)
        return 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, "SELECT worker, state, checks, history FROM verification", -1,
                           &q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "load verification");
    int rc = 0, s;
    while (rc == 0 && (s = sqlite3_step(q)) == SQLITE_ROW) {
        mu_id id;
        column_id(q, 0, &id);
        size_t len = (size_t)sqlite3_column_bytes(q, 3);
        const uint8_t *b = sqlite3_column_blob(q, 3);
        if (len % STORE_VERIFY_RECORD || len > STORE_VERIFY_HISTORY * STORE_VERIFY_RECORD) {
            rc = errprintf(errp, "store: a verification history is %zu bytes", len);
            break;
        }
        store_verify_result hist[STORE_VERIFY_HISTORY];
        size_t n = len / STORE_VERIFY_RECORD;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = b + i * STORE_VERIFY_RECORD;
            uint64_t at = 0;
            uint32_t f[4] = {0};
            for (int k = 0; k < 8; k++)
                at |= (uint64_t)p[k] << (8 * k);
            for (int j = 0; j < 4; j++)
                for (int k = 0; k < 4; k++)
                    f[j] |= (uint32_t)p[8 + j * 4 + k] << (8 * k);
            hist[i] = (store_verify_result){at, f[0], f[1], f[2], f[3], p[24], p[25]};
        }
        rc = fn(arg, &id, sqlite3_column_int(q, 1), (uint32_t)sqlite3_column_int64(q, 2), hist, n,
                errp);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = sql_error(st, errp, "load verification");
    sqlite3_finalize(q);
    return rc;
}

int store_set_max_bytes(store *st, uint64_t bytes, mu_error *errp)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, "PRAGMA page_size", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_finalize(q);
        return sql_error(st, errp, "page size");
    }
    uint64_t page = (uint64_t)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    char sql[96];
    /* 0 restores SQLite's own maximum. */
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %llu",
             bytes ? (unsigned long long)(bytes / page ? bytes / page : 1) : 4294967294ull);
    return exec(st, sql, errp);
}

/* --- checks ---------------------------------------------------------------------------------- */

int store_put_worker_key(store *st, const mu_id *worker, const char *key, mu_error *errp)
{
    if (st->version < 5)
        return errprintf(errp, "store: schema %d has no worker keys", st->version);
    sqlite3_stmt *q = st->put_worker_key;
    bind_id(q, 1, worker);
    sqlite3_bind_text(q, 2, key, -1, SQLITE_TRANSIENT);
    return step_done(st, q, errp, "save worker key");
}

int store_load_worker_keys(store *st, store_worker_key_fn fn, void *arg, mu_error *errp)
{
    if (st->version < 5)
        return 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, "SELECT id, owner_key FROM workers WHERE owner_key != ''", -1,
                           &q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "load worker keys");
    int rc = 0, s;
    while (rc == 0 && (s = sqlite3_step(q)) == SQLITE_ROW) {
        mu_id id;
        column_id(q, 0, &id);
        rc = fn(arg, &id, (const char *)sqlite3_column_text(q, 1), errp);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = sql_error(st, errp, "load worker keys");
    sqlite3_finalize(q);
    return rc;
}

/* --- tasks ------------------------------------------------------------------------------ */

int store_put_task(store *st, const store_task *t, mu_error *errp)
{
    if (st->version < 4)
        return errprintf(errp, "store: schema %d has no tasks", st->version);
    sqlite3_stmt *q = st->put_task;
    bind_id(q, 1, &t->cluster);
    sqlite3_bind_int64(q, 2, t->number);
    sqlite3_bind_blob(q, 3, t->spec_len ? t->spec : "", (int)t->spec_len, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 4, t->state);
    sqlite3_bind_int64(q, 5, t->attempts);
    sqlite3_bind_int64(q, 6, t->failures);
    sqlite3_bind_int64(q, 7, t->losses);
    sqlite3_bind_int(q, 8, t->exit_code);
    sqlite3_bind_int(q, 9, t->signal);
    bind_id(q, 10, &t->worker);
    sqlite3_bind_int64(q, 11, (sqlite3_int64)t->gpu_mask);
    sqlite3_bind_int64(q, 12, (sqlite3_int64)t->submitted_at);
    sqlite3_bind_int64(q, 13, (sqlite3_int64)t->started_at);
    sqlite3_bind_int64(q, 14, (sqlite3_int64)t->finished_at);
    sqlite3_bind_text(q, 15, t->reason ? t->reason : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(q, 16, t->n_lost_on ? (const void *)t->lost_on : "",
                      (int)(t->n_lost_on * sizeof(mu_id)), SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 17, (sqlite3_int64)t->log_total);
    return step_done(st, q, errp, "save task");
}

int store_put_task_output(store *st, const mu_id *cluster, uint32_t number, const void *result,
                          size_t result_len, const void *log, size_t log_len, uint64_t log_offset,
                          mu_error *errp)
{
    if (st->version < 4)
        return errprintf(errp, "store: schema %d has no tasks", st->version);
    if (result_len > INT32_MAX || log_len > INT32_MAX)
        return errprintf(errp, "store: task output too large");
    sqlite3_stmt *q = st->put_task_output;
    bind_id(q, 1, cluster);
    sqlite3_bind_int64(q, 2, number);
    sqlite3_bind_blob(q, 3, result_len ? result : "", (int)result_len, SQLITE_TRANSIENT);
    sqlite3_bind_blob(q, 4, log_len ? log : "", (int)log_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 5, (sqlite3_int64)log_offset);
    return step_done(st, q, errp, "save task output");
}

static int copy_blob(sqlite3_stmt *q, int col, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = (size_t)sqlite3_column_bytes(q, col);
    if (!*len)
        return 0;
    if (!(*out = mu_malloc(*len)))
        return -1;
    memcpy(*out, sqlite3_column_blob(q, col), *len);
    return 0;
}

int store_get_task_output(store *st, const mu_id *cluster, uint32_t number, uint8_t **result,
                          size_t *result_len, uint8_t **log, size_t *log_len, uint64_t *log_offset,
                          mu_error *errp)
{
    *result = *log = NULL;
    *result_len = *log_len = 0;
    *log_offset = 0;
    if (st->version < 4)
        return 0;
    sqlite3_stmt *q = st->get_task_output;
    bind_id(q, 1, cluster);
    sqlite3_bind_int64(q, 2, number);
    int s = sqlite3_step(q), rc = 0;
    if (s == SQLITE_ROW) {
        if (copy_blob(q, 0, result, result_len) < 0 || copy_blob(q, 1, log, log_len) < 0) {
            mu_free(*result);
            *result = NULL;
            *result_len = 0;
            rc = errprintf(errp, "out of memory");
        }
        *log_offset = (uint64_t)sqlite3_column_int64(q, 2);
    } else if (s != SQLITE_DONE) {
        rc = sql_error(st, errp, "read task output");
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return rc;
}

int store_load_tasks(store *st, store_task_fn fn, void *arg, mu_error *errp)
{
    if (st->version < 4)
        return 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT t.cluster, t.number, t.spec, t.state, t.attempts, t.failures, "
                           "t.losses, t.exit_code, t.signal, t.worker, t.gpu_mask, "
                           "t.submitted_at, t.started_at, t.finished_at, t.reason, t.lost_on, "
                           "t.log_total, length(o.result) FROM tasks t "
                           "JOIN clusters c ON c.id = t.cluster "
                           "LEFT JOIN task_output o ON o.cluster = t.cluster AND "
                           "o.number = t.number "
                           "ORDER BY c.created_at, c.rowid, t.number",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "load tasks");
    int rc = 0, s;
    while (rc == 0 && (s = sqlite3_step(q)) == SQLITE_ROW) {
        store_task t = {0};
        column_id(q, 0, &t.cluster);
        t.number = (uint32_t)sqlite3_column_int64(q, 1);
        t.spec = sqlite3_column_blob(q, 2);
        t.spec_len = (size_t)sqlite3_column_bytes(q, 2);
        t.state = sqlite3_column_int(q, 3);
        t.attempts = (uint32_t)sqlite3_column_int64(q, 4);
        t.failures = (uint32_t)sqlite3_column_int64(q, 5);
        t.losses = (uint32_t)sqlite3_column_int64(q, 6);
        t.exit_code = sqlite3_column_int(q, 7);
        t.signal = sqlite3_column_int(q, 8);
        column_id(q, 9, &t.worker);
        t.gpu_mask = (uint64_t)sqlite3_column_int64(q, 10);
        t.submitted_at = (uint64_t)sqlite3_column_int64(q, 11);
        t.started_at = (uint64_t)sqlite3_column_int64(q, 12);
        t.finished_at = (uint64_t)sqlite3_column_int64(q, 13);
        t.reason = (const char *)sqlite3_column_text(q, 14);
        size_t len = (size_t)sqlite3_column_bytes(q, 15);
        if (len % sizeof(mu_id)) {
            rc = errprintf(errp, "store: task %u's lost workers are %zu bytes", t.number, len);
            break;
        }
        t.lost_on = sqlite3_column_blob(q, 15);
        t.n_lost_on = len / sizeof(mu_id);
        t.log_total = (uint64_t)sqlite3_column_int64(q, 16);
        t.result_len = (uint32_t)sqlite3_column_int64(q, 17);
        rc = fn(arg, &t, errp);
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = sql_error(st, errp, "load tasks");
    sqlite3_finalize(q);
    return rc;
}

static int count_query(store *st, const char *sql, uint64_t *n, mu_error *errp)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "count");
    int s = sqlite3_step(q);
    *n = s == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    return s == SQLITE_ROW ? 0 : sql_error(st, errp, "count");
}

int store_count(store *st, const char *table, uint64_t *n, mu_error *errp)
{
    static const char *const tables[] = {"workers",         "clusters",     "cluster_members",
                                         "cluster_history", "verification", "tasks",
                                         "task_output",     "reservations"};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        if (!strcmp(table, tables[i])) {
            char sql[64];
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
            return count_query(st, sql, n, errp);
        }
    }
    return errprintf(errp, "store: no table %s", table);
}

int store_check(store *st, mu_error *errp)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db, "PRAGMA integrity_check", -1, &q, NULL) != SQLITE_OK)
        return sql_error(st, errp, "integrity check");
    int s = sqlite3_step(q);
    const char *res = s == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
    int rc =
        res && !strcmp(res, "ok") ? 0 : errprintf(errp, "store: integrity: %s", res ? res : "?");
    sqlite3_finalize(q);
    if (rc < 0 || st->version < 2)
        return rc;
    static const struct {
        const char *sql;
        const char *what;
    } checks[] = {
        {"SELECT count(*) FROM cluster_members m LEFT JOIN clusters c ON c.id = m.cluster "
         "WHERE c.id IS NULL",
         "members of clusters that do not exist"},
        {"SELECT count(*) FROM cluster_members m LEFT JOIN workers w ON w.id = m.worker "
         "WHERE m.worker IS NOT NULL AND w.id IS NULL",
         "members that are not known workers"},
        {"SELECT count(*) FROM cluster_history h LEFT JOIN clusters c ON c.id = h.cluster "
         "WHERE c.id IS NULL",
         "history of clusters that do not exist"},
        {"SELECT count(*) FROM (SELECT m.worker FROM cluster_members m JOIN clusters c ON "
         "c.id = m.cluster WHERE c.state IN (1, 2, 3) AND m.worker IS NOT NULL GROUP BY "
         "m.worker HAVING count(*) > 1)",
         "workers in two active clusters"},
    };
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        uint64_t n;
        if (count_query(st, checks[i].sql, &n, errp) < 0)
            return -1;
        if (n)
            return errprintf(errp, "store: %llu %s", (unsigned long long)n, checks[i].what);
    }
    uint64_t n;
    if (st->version >= 4 &&
        count_query(st,
                    "SELECT count(*) FROM tasks t LEFT JOIN clusters c ON c.id = t.cluster "
                    "WHERE c.id IS NULL",
                    &n, errp) < 0)
        return -1;
    if (st->version >= 4 && n)
        return errprintf(errp, "store: %llu tasks of clusters that do not exist",
                         (unsigned long long)n);
    return 0;
}
