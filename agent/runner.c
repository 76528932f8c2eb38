/* runner.c - see runner.h.
 *
 * An attempt's life: runner_start validates it, makes its directory and
 * output.log, builds argv, the environment and the list of paths to try
 * (all before fork: the agent has threads, so the child may only make
 * async-signal-safe calls, and never allocates), then forks. The child sets
 * itself up and execs; if anything fails before exec it writes what and
 * errno into a close-on-exec pipe, so the parent reads either that report
 * or end-of-file (exec succeeded). An attempt that cannot run is kept as
 * "done" with its error, and reported by the next runner_process like any
 * other exit: every attempt ends in exactly one exit event.
 *
 * runner_process then, for each attempt: reads what the pipe holds (a
 * bounded amount per call, so one flooding task cannot starve the loop),
 * appending it to output.log, to the tail kept for the exit event and to
 * the window of bytes waiting to be forwarded, whose oldest bytes are
 * dropped (and counted) beyond forward_max_bytes - which happens only while
 * the consumer refuses output (its link is down or full) or when one read
 * is larger than the window; sends SIGTERM at the
 * timeout and SIGKILL after the grace; and looks for the leader's exit with
 * waitid(WNOWAIT), so that the leader, still a zombie, keeps its pid - the
 * process group's id - reserved while the rest of the group is SIGKILLed.
 * Only then is it reaped. A killed group closes the pipe as it dies; what
 * is left is read until end-of-file or DRAIN_MS, whichever comes first
 * (a process that left the group could hold the pipe open forever).
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "fsutil.h"

#define DEFAULT_TAIL_BYTES    (64u << 10)
#define DEFAULT_GRACE_MS      5000u
#define DEFAULT_RESULT_BYTES  (1u << 20)
#define DEFAULT_FORWARD_BYTES (256u << 10)
/* Output is forwarded in batches: when this much waits... */
#define OUTPUT_BATCH_BYTES (32u << 10)
/* ...or this long after the last batch, and at exit. */
#define OUTPUT_FLUSH_MS 100u
/* The largest output event: a quarter of the broker's default message cap
 * (WIRE_MAX_MESSAGE_DEFAULT, 256 KiB), leaving room for the envelope. */
#define OUTPUT_CHUNK_BYTES (64u << 10)
/* One read(); a pipe holds 64 KiB by default. */
#define READ_BYTES (64u << 10)
/* Read at most this much per attempt per runner_process. */
#define READ_BUDGET_BYTES (1u << 20)
/* After the leader exits and its group is killed, how long to wait for the
 * pipe to close. */
#define DRAIN_MS 200u
/* Without a pidfd, how often to look for exits. */
#define FALLBACK_POLL_MS 100
#define CLUSTER_ID_MAX   128
#define MAX_ENV          4096
#define MAX_GPUS         4096

/* The newest bytes of a stream, at most cap of them, oldest first. */
typedef struct window {
    uint8_t *buf;
    size_t cap;
    size_t len;
} window;

/* Append n bytes; returns how many of the oldest were dropped to fit. */
static size_t window_append(window *w, const uint8_t *p, size_t n)
{
    size_t dropped = 0;
    if (n >= w->cap) {
        dropped = w->len + n - w->cap;
        memcpy(w->buf, p + n - w->cap, w->cap);
        w->len = w->cap;
        return dropped;
    }
    if (w->len + n > w->cap) {
        dropped = w->len + n - w->cap;
        memmove(w->buf, w->buf + dropped, w->len - dropped);
        w->len -= dropped;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return dropped;
}

typedef struct attempt {
    struct attempt *next;
    char *cluster_id;
    uint32_t number;
    uint32_t attempt;
    bool started;     /* a process ran (else fail_code and err say why not) */
    int fail_code;    /* exit code reported when not started: -1 or 127 */
    pid_t pid;        /* the leader, and the id of its process group */
    int pidfd;        /* readable when the leader exits; -1: none */
    int out_fd;       /* the pipe's read end; -1 after end-of-file */
    int log_fd;       /* output.log; -1: none */
    bool leader_gone; /* reaped; status holds its wait status */
    int status;
    uint64_t drain_until; /* when leader_gone: stop waiting for the pipe */
    bool done;            /* nothing left but to report the exit */
    char *cwd;            /* absolute */
    char *result_file;    /* NULL: none */
    uint32_t result_max;
    uint64_t deadline; /* the timeout; 0: none */
    bool terminating;  /* SIGTERM sent (or SIGKILL, with no grace) */
    uint64_t kill_at;  /* SIGKILL due; 0: none */
    bool timed_out;
    bool cancelled;
    bool has_error;
    mu_error err;
    uint64_t total; /* bytes read */
    window tail;
    window fwd;           /* waiting to be forwarded: the newest fwd.len bytes */
    uint64_t fwd_dropped; /* dropped since the last output event taken */
    bool refused;         /* the consumer refused the last offer */
    uint64_t last_emit;
} attempt;

struct runner {
    runner_config cfg;
    char work_dir[PATH_MAX]; /* absolute */
    char *env_path;          /* "PATH=...", the base environment */
    char *env_home;          /* "HOME=..." or NULL */
    char *env_lang;          /* "LANG=..." or NULL */
    long max_fd;             /* for closing descriptors when close_range is missing */
    attempt *head;
    size_t count;
    uint8_t *readbuf; /* READ_BYTES */
};

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = mu_malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* --- create / destroy ------------------------------------------------------ */

runner *runner_create(const runner_config *cfg, mu_error *errp)
{
    if (!cfg || !cfg->work_dir || !cfg->work_dir[0])
        return errno = EINVAL, errprintf(errp, "runner: no work directory"), NULL;
    if (cfg->result_max_bytes > RUNNER_RESULT_CEILING)
        return errno = EINVAL,
               errprintf(errp, "result cap of %u bytes is over the ceiling of %u",
                         cfg->result_max_bytes, RUNNER_RESULT_CEILING),
               NULL;
    runner *r = mu_calloc(1, sizeof(*r));
    if (!r)
        return errno = ENOMEM, errprintf(errp, "out of memory"), NULL;
    r->cfg = *cfg;
    r->cfg.work_dir = NULL; /* borrowed: r->work_dir is the copy */
    if (!r->cfg.tail_bytes)
        r->cfg.tail_bytes = DEFAULT_TAIL_BYTES;
    if (!r->cfg.kill_grace_ms)
        r->cfg.kill_grace_ms = DEFAULT_GRACE_MS;
    if (!r->cfg.result_max_bytes)
        r->cfg.result_max_bytes = DEFAULT_RESULT_BYTES;
    if (!r->cfg.forward_max_bytes)
        r->cfg.forward_max_bytes = DEFAULT_FORWARD_BYTES;
    long m = sysconf(_SC_OPEN_MAX);
    r->max_fd = m > 0 && m < 65536 ? m : 65536;
    const char *path = getenv("PATH");
    const char *home = getenv("HOME");
    const char *lang = getenv("LANG");
    r->env_path = str_printf("PATH=%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    r->env_home = home ? str_printf("HOME=%s", home) : NULL;
    r->env_lang = lang ? str_printf("LANG=%s", lang) : NULL;
    r->readbuf = mu_malloc(READ_BYTES);
    if (!r->env_path || (home && !r->env_home) || (lang && !r->env_lang) || !r->readbuf) {
        runner_destroy(r);
        return errno = ENOMEM, errprintf(errp, "out of memory"), NULL;
    }
    if (fs_mkdir_p(cfg->work_dir, 0700, errp) < 0) {
        runner_destroy(r);
        return NULL;
    }
    if (!realpath(cfg->work_dir, r->work_dir)) {
        int e = errno;
        runner_destroy(r);
        return errno = e, errprintf(errp, "%s: %s", cfg->work_dir, strerror(e)), NULL;
    }
    return r;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void attempt_free(attempt *a)
{
    if (!a)
        return;
    close_fd(&a->pidfd);
    close_fd(&a->out_fd);
    close_fd(&a->log_fd);
    mu_free(a->cluster_id);
    mu_free(a->cwd);
    mu_free(a->result_file);
    mu_free(a->tail.buf);
    mu_free(a->fwd.buf);
    mu_free(a);
}

/* Signal the attempt's process group (its leader not yet reaped). */
static void signal_group(const attempt *a, int sig)
{
    if (a->started && !a->leader_gone && kill(-a->pid, sig) < 0 && errno == ESRCH)
        kill(a->pid, sig);
}

void runner_destroy(runner *r)
{
    if (!r)
        return;
    attempt *a = r->head;
    while (a) {
        attempt *next = a->next;
        if (a->started && !a->leader_gone) {
            signal_group(a, SIGKILL);
            while (waitpid(a->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        attempt_free(a);
        a = next;
    }
    mu_free(r->env_path);
    mu_free(r->env_home);
    mu_free(r->env_lang);
    mu_free(r->readbuf);
    mu_free(r);
}

/* --- starting ---------------------------------------------------------------- */

static attempt *find(const runner *r, const char *cluster_id, uint32_t number, uint32_t attempt_no)
{
    for (attempt *a = r->head; a; a = a->next)
        if (a->number == number && a->attempt == attempt_no && !strcmp(a->cluster_id, cluster_id))
            return a;
    return NULL;
}

/* A cluster id names a directory: no separators, no dot-files, printable. */
static bool cluster_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CLUSTER_ID_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* Relative, and never climbing out of the task's directory. */
static bool result_path_ok(const char *p)
{
    if (p[0] == '/')
        return false;
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return false;
        c += n;
        if (*c == '/')
            c++;
    }
    return true;
}

/* Record why the attempt could not run; it is done. Returns 0: the start
 * itself "succeeded", the exit event will say the rest. */
static int fail(attempt *a, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(attempt *a, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err.text, sizeof(a->err.text), fmt, ap);
    va_end(ap);
    a->has_error = true;
    a->fail_code = code;
    a->done = true;
    return 0;
}

/* The environment variables only the runner sets. */
static bool env_reserved(const char *entry, size_t name_len)
{
    return (name_len == 20 && !strncmp(entry, "CUDA_VISIBLE_DEVICES", 20)) ||
           (name_len >= 7 && !strncmp(entry, "MUSTER_", 7));
}

/* Index of the entry named like `entry` (up to '='), or n. */
static size_t env_find(char **envp, size_t n, const char *entry, size_t name_len)
{
    for (size_t i = 0; i < n; i++)
        if (!strncmp(envp[i], entry, name_len) && envp[i][name_len] == '=')
            return i;
    return n;
}

/* What the child needs, all allocated before fork. */
typedef struct child_plan {
    char **argv;    /* NULL-terminated; entries borrowed from the task */
    char **envp;    /* NULL-terminated; entries borrowed or in owned[] */
    char *owned[5]; /* the MUSTER_ and CUDA_ entries */
    char **paths;   /* candidates for argv[0], NULL-terminated, owned */
    size_t n_paths;
    const char *cwd;
    int null_fd, out_w, err_w; /* all >= 3 */
    long max_fd;
    pid_t parent; /* the agent */
} child_plan;

static void plan_free(child_plan *p)
{
    mu_free(p->argv);
    mu_free(p->envp);
    for (size_t i = 0; i < sizeof(p->owned) / sizeof(p->owned[0]); i++)
        mu_free(p->owned[i]);
    for (size_t i = 0; p->paths && i < p->n_paths; i++)
        mu_free(p->paths[i]);
    mu_free(p->paths);
}

/* Build the environment (see runner.h). -1: out of memory, or a task entry
 * without '=' (then *bad is it). */
static int plan_env(const runner *r, const runner_task *t, const char *dir, child_plan *p,
                    const char **bad)
{
    size_t cap = 8 + t->n_env, n = 0, k = 0;
    char *gpus = mu_malloc(t->n_gpus * 11 + 1);
    p->envp = mu_calloc(cap + 1, sizeof(char *));
    if (!gpus || !p->envp) {
        mu_free(gpus);
        return -1;
    }
    size_t at = 0;
    gpus[0] = '\0';
    for (size_t i = 0; i < t->n_gpus; i++)
        at += (size_t)snprintf(gpus + at, 12, "%s%u", i ? "," : "", t->gpus[i]);
    p->owned[k++] = str_printf("MUSTER_CLUSTER_ID=%s", t->cluster_id);
    p->owned[k++] = str_printf("MUSTER_TASK=%u", t->number);
    p->owned[k++] = str_printf("MUSTER_ATTEMPT=%u", t->attempt);
    p->owned[k++] = str_printf("MUSTER_TASK_DIR=%s", dir);
    p->owned[k++] = str_printf("CUDA_VISIBLE_DEVICES=%s", gpus);
    mu_free(gpus);
    for (size_t i = 0; i < k; i++)
        if (!p->owned[i])
            return -1;
    /* The base entries are the runner's, alive as long as it is. */
    p->envp[n++] = r->env_path;
    if (r->env_home)
        p->envp[n++] = r->env_home;
    if (r->env_lang)
        p->envp[n++] = r->env_lang;
    for (size_t i = 0; i < k; i++)
        p->envp[n++] = p->owned[i];
    for (size_t i = 0; i < t->n_env; i++) {
        const char *e = t->env[i];
        const char *eq = e ? strchr(e, '=') : NULL;
        if (!eq || eq == e) {
            *bad = e ? e : "(null)";
            return -1;
        }
        size_t name_len = (size_t)(eq - e);
        if (env_reserved(e, name_len))
            continue;
        size_t j = env_find(p->envp, n, e, name_len);
        p->envp[j] = (char *)e;
        if (j == n)
            n++;
    }
    p->envp[n] = NULL;
    return 0;
}

/* Where to look for argv[0]: itself when it holds a '/', else each entry of
 * the child's PATH (an empty entry meaning the current directory). */
static int plan_paths(child_plan *p, const char *prog)
{
    const char *path = "/usr/local/bin:/usr/bin:/bin";
    for (char **e = p->envp; *e; e++)
        if (!strncmp(*e, "PATH=", 5))
            path = *e + 5;
    size_t n = 1;
    if (!strchr(prog, '/'))
        for (const char *c = path; *c; c++)
            n += *c == ':';
    p->paths = mu_calloc(n + 1, sizeof(char *));
    if (!p->paths)
        return -1;
    if (strchr(prog, '/')) {
        p->n_paths = 1;
        return (p->paths[0] = str_printf("%s", prog)) ? 0 : -1;
    }
    const char *c = path;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(c, ":");
        p->paths[i] = len ? str_printf("%.*s/%s", (int)len, c, prog) : str_printf("./%s", prog);
        p->n_paths = i + 1;
        if (!p->paths[i])
            return -1;
        c += len + (c[len] == ':');
    }
    return 0;
}

enum { STAGE_SETUP = 1, STAGE_CWD, STAGE_EXEC };

typedef struct child_report {
    int stage;
    int err;
} child_report;

static void child_fail(int fd, int stage, int err) __attribute__((noreturn));
static void child_fail(int fd, int stage, int err)
{
    child_report rep = {stage, err};
    ssize_t n = write(fd, &rep, sizeof(rep));
    (void)n;
    _exit(127);
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child_run(const child_plan *p) __attribute__((noreturn));
static void child_run(const child_plan *p)
{
    if (setpgid(0, 0) < 0)
        child_fail(p->err_w, STAGE_SETUP, errno);
    /* A task does not outlive its agent: if the agent dies (even by
     * SIGKILL), the broker runs the task elsewhere, and this copy must not
     * go on beside it. (Its own children are reached through the process
     * group only while the agent lives.) */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != p->parent)
        child_fail(p->err_w, STAGE_SETUP, errno);
    /* Dispositions set to SIG_IGN survive exec (the agent ignores SIGPIPE),
     * and so does the signal mask: give the task a clean slate. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(p->null_fd, 0) < 0 || dup2(p->out_w, 1) < 0 || dup2(p->out_w, 2) < 0)
        child_fail(p->err_w, STAGE_SETUP, errno);
    int ef = p->err_w;
    if (ef != 3) {
        if (dup3(ef, 3, O_CLOEXEC) < 0)
            child_fail(ef, STAGE_SETUP, errno);
        ef = 3;
    }
    /* Nothing of the agent's leaks into the task: sockets, files, pidfds. */
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 4u, ~0u, 0u) < 0)
#endif
        for (long fd = 4; fd < p->max_fd; fd++)
            close((int)fd);
    if (chdir(p->cwd) < 0)
        child_fail(ef, STAGE_CWD, errno);
    /* As execvp: go on past entries that do not hold the program, and
     * report EACCES if any entry had it but could not run it. */
    int err = ENOENT;
    bool eacces = false;
    for (char **c = p->paths; *c; c++) {
        execve(*c, p->argv, p->envp);
        err = errno;
        if (err == EACCES)
            eacces = true;
        else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV &&
                 err != ETIMEDOUT)
            break;
    }
    if (eacces && (err == ENOENT || err == ENOTDIR || err == EACCES))
        err = EACCES;
    child_fail(ef, STAGE_EXEC, err);
}

/* A descriptor numbered 3 or more (close-on-exec), so the child's dup2 onto
 * 0, 1 and 2 cannot overwrite one it still needs. */
static int fd_high(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return n;
}

/* Make the directory, log and process of a validated attempt; any failure
 * goes into the attempt (fail()). */
static int launch(runner *r, attempt *a, const runner_task *t, uint64_t now)
{
    char dir[PATH_MAX];
    if ((size_t)snprintf(dir, sizeof(dir), "%s/%s/%u.%u", r->work_dir, t->cluster_id, t->number,
                         t->attempt) >= sizeof(dir))
        return fail(a, -1, "attempt directory path too long");
    mu_error err;
    if (fs_mkdir_p(dir, 0700, &err) < 0)
        return fail(a, -1, "cannot create the attempt directory: %s", err.text);
    char log_path[PATH_MAX + 16];
    snprintf(log_path, sizeof(log_path), "%s/output.log", dir);
    a->log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (a->log_fd < 0)
        return fail(a, -1, "cannot create %s: %s", log_path, strerror(errno));

    if (!t->cwd || !t->cwd[0])
        a->cwd = str_printf("%s", dir);
    else if (t->cwd[0] == '/')
        a->cwd = str_printf("%s", t->cwd);
    else
        a->cwd = str_printf("%s/%s", r->work_dir, t->cwd);
    if (!a->cwd)
        return fail(a, -1, "out of memory");
    struct stat st;
    if (stat(a->cwd, &st) < 0)
        return fail(a, -1, "working directory '%s': %s", a->cwd, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail(a, -1, "working directory '%s' is not a directory", a->cwd);
    if (a->result_file) {
        /* A result left by an earlier run (the directory is reused when a
         * start is resent after an agent restart, or cwd is shared) must not
         * pass for this attempt's. */
        char res[PATH_MAX * 2];
        snprintf(res, sizeof(res), "%s/%s", a->cwd, a->result_file);
        if (unlink(res) < 0 && errno != ENOENT && errno != ENOTDIR)
            return fail(a, -1, "cannot remove the old result file '%.100s': %s", a->result_file,
                        strerror(errno));
    }

    child_plan p;
    memset(&p, 0, sizeof(p));
    p.cwd = a->cwd;
    p.max_fd = r->max_fd;
    p.null_fd = p.out_w = p.err_w = -1;
    int out[2] = {-1, -1}, errpipe[2] = {-1, -1};
    const char *bad = NULL;
    int rc = 0;
    if (plan_env(r, t, dir, &p, &bad) < 0) {
        rc = bad ? fail(a, -1, "env entry '%.60s' is not NAME=value", bad)
                 : fail(a, -1, "out of memory");
        goto out;
    }
    p.argv = mu_calloc(t->argc + 1, sizeof(char *));
    if (!p.argv || plan_paths(&p, t->argv[0]) < 0) {
        rc = fail(a, -1, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < t->argc; i++)
        p.argv[i] = (char *)(t->argv[i] ? t->argv[i] : "");
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errpipe, O_CLOEXEC) < 0) {
        rc = fail(a, -1, "cannot make a pipe: %s", strerror(errno));
        goto out;
    }
    out[0] = fd_high(out[0]);
    out[1] = fd_high(out[1]);
    errpipe[0] = fd_high(errpipe[0]);
    errpipe[1] = fd_high(errpipe[1]);
    p.null_fd = fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (out[0] < 0 || out[1] < 0 || errpipe[0] < 0 || errpipe[1] < 0 || p.null_fd < 0 ||
        fcntl(out[0], F_SETFL, O_NONBLOCK) < 0) {
        rc = fail(a, -1, "cannot set up the task's descriptors: %s", strerror(errno));
        goto out;
    }
    p.out_w = out[1];
    p.err_w = errpipe[1];
    p.parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = fail(a, -1, "cannot fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child_run(&p);
    /* Both sides set the group, so it exists whichever runs first (EACCES
     * once the child has exec'd: it did it itself). */
    setpgid(pid, pid);
    close_fd(&out[1]);
    close_fd(&errpipe[1]);
    child_report rep;
    ssize_t n;
    while ((n = read(errpipe[0], &rep, sizeof(rep))) < 0 && errno == EINTR)
        ;
    if (n == (ssize_t)sizeof(rep)) {
        /* The child failed before exec and _exit()ed: reap it now. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        if (rep.stage == STAGE_EXEC)
            rc = fail(a, 127, "cannot run '%.100s': %s", t->argv[0], strerror(rep.err));
        else if (rep.stage == STAGE_CWD)
            rc = fail(a, -1, "cannot enter working directory '%.100s': %s", a->cwd,
                      strerror(rep.err));
        else
            rc = fail(a, -1, "cannot set up the task's process: %s", strerror(rep.err));
        goto out;
    }
    a->started = true;
    a->pid = pid;
    a->out_fd = out[0];
    out[0] = -1;
    if (!r->cfg.no_pidfd) {
#ifdef SYS_pidfd_open
        a->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by itself */
#endif
    }
    if (t->timeout_ms)
        a->deadline = now + t->timeout_ms;
out:
    close_fd(&out[0]);
    close_fd(&out[1]);
    close_fd(&errpipe[0]);
    close_fd(&errpipe[1]);
    close_fd(&p.null_fd);
    plan_free(&p);
    return rc;
}

int runner_start(runner *r, const runner_task *t, uint64_t now, mu_error *errp)
{
    if (!r || !t || !t->cluster_id || !t->argv || t->argc == 0 || !t->argv[0] || !t->argv[0][0])
        return errno = EINVAL, errprintf(errp, "a task needs a cluster id and a program");
    if (!cluster_id_ok(t->cluster_id))
        return errno = EINVAL,
               errprintf(errp, "cluster id '%.40s' is not fit for a directory name", t->cluster_id);
    if ((t->n_env && !t->env) || (t->n_gpus && !t->gpus) || t->n_env > MAX_ENV ||
        t->n_gpus > MAX_GPUS)
        return errno = EINVAL, errprintf(errp, "bad env or gpu list");
    if (find(r, t->cluster_id, t->number, t->attempt))
        return errno = EEXIST, errprintf(errp, "task %s/%u attempt %u is already here",
                                         t->cluster_id, t->number, t->attempt);
    if (r->count >= RUNNER_MAX_ATTEMPTS)
        return errno = EAGAIN,
               errprintf(errp, "%d task attempts are running already", RUNNER_MAX_ATTEMPTS);
    attempt *a = mu_calloc(1, sizeof(*a));
    if (!a)
        return errno = ENOMEM, errprintf(errp, "out of memory");
    a->pidfd = a->out_fd = a->log_fd = -1;
    a->number = t->number;
    a->attempt = t->attempt;
    a->last_emit = now;
    a->cluster_id = mu_strdup(t->cluster_id);
    a->tail.cap = r->cfg.tail_bytes;
    a->tail.buf = mu_malloc(a->tail.cap);
    a->fwd.cap = r->cfg.forward_max_bytes;
    a->fwd.buf = mu_malloc(a->fwd.cap);
    if (t->result_file && t->result_file[0])
        a->result_file = mu_strdup(t->result_file);
    if (!a->cluster_id || !a->tail.buf || !a->fwd.buf ||
        (t->result_file && t->result_file[0] && !a->result_file)) {
        attempt_free(a);
        return errno = ENOMEM, errprintf(errp, "out of memory");
    }
    a->result_max = t->result_max_bytes ? t->result_max_bytes : r->cfg.result_max_bytes;
    if (a->result_max > RUNNER_RESULT_CEILING)
        a->result_max = RUNNER_RESULT_CEILING;
    if (a->result_file && !result_path_ok(a->result_file))
        fail(a, -1, "result file '%.100s' must be a relative path without '..'", a->result_file);
    else
        launch(r, a, t, now);
    a->next = r->head;
    r->head = a;
    r->count++;
    return 0;
}

/* --- stopping ------------------------------------------------------------------- */

/* SIGTERM now, SIGKILL after the grace; a second call changes nothing. */
static void terminate(runner *r, attempt *a, uint64_t now)
{
    if (!a->started || a->leader_gone || a->terminating)
        return;
    a->terminating = true;
    signal_group(a, SIGTERM);
    a->kill_at = now + r->cfg.kill_grace_ms;
}

int runner_kill(runner *r, const char *cluster_id, uint32_t number, uint32_t attempt_no,
                uint64_t now)
{
    attempt *a = r && cluster_id ? find(r, cluster_id, number, attempt_no) : NULL;
    if (!a)
        return errno = ENOENT, -1;
    if (!a->terminating && !a->leader_gone && a->started)
        a->cancelled = true;
    terminate(r, a, now);
    return 0;
}

size_t runner_kill_cluster(runner *r, const char *cluster_id, uint64_t now)
{
    size_t n = 0;
    for (attempt *a = r && cluster_id ? r->head : NULL; a; a = a->next) {
        if (strcmp(a->cluster_id, cluster_id) != 0)
            continue;
        runner_kill(r, cluster_id, a->number, a->attempt, now);
        n++;
    }
    return n;
}

/* --- running ---------------------------------------------------------------------- */

static void take_output(attempt *a, const uint8_t *p, size_t n)
{
    /* output.log is the complete record; a write that fails (a full disk)
     * loses bytes there but must not stop the task, nor the forwarding. */
    for (size_t done = 0; a->log_fd >= 0 && done < n;) {
        ssize_t w = write(a->log_fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    window_append(&a->tail, p, n);
    a->fwd_dropped += window_append(&a->fwd, p, n);
    a->total += n;
}

static void emit_output(attempt *a, uint64_t now, bool force, runner_event_fn fn, void *arg);

/* Read what the pipe holds, up to the budget; a batch is offered as soon as
 * it is full, so a consumer that keeps up loses nothing however much comes. */
static void read_output(runner *r, attempt *a, uint64_t now, runner_event_fn fn, void *arg)
{
    size_t budget = READ_BUDGET_BYTES;
    while (a->out_fd >= 0 && budget > 0) {
        ssize_t n = read(a->out_fd, r->readbuf, READ_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) { /* end-of-file, or an error no retry fixes */
            close_fd(&a->out_fd);
            return;
        }
        take_output(a, r->readbuf, (size_t)n);
        emit_output(a, now, false, fn, arg);
        budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
    }
}

/* Has the leader exited? Then kill the rest of its group and reap it. */
static void reap(attempt *a, uint64_t now)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)a->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
        if (errno == EINTR)
            return;
        /* ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN, or a
         * waitpid(-1) elsewhere in the process). */
        a->leader_gone = true;
        a->started = false;
        fail(a, -1, "lost track of the task's process: %s", strerror(errno));
        a->done = false; /* still drain the pipe */
        a->drain_until = now + DRAIN_MS;
        close_fd(&a->pidfd);
        return;
    }
    if (si.si_pid == 0)
        return;
    /* The zombie leader still holds the group's id: nothing else can have
     * taken it. Nothing outlives its task. */
    signal_group(a, SIGKILL);
    int st = 0;
    while (waitpid(a->pid, &st, 0) < 0 && errno == EINTR)
        ;
    a->status = st;
    a->leader_gone = true;
    a->drain_until = now + DRAIN_MS;
    close_fd(&a->pidfd);
}

static void step(runner *r, attempt *a, uint64_t now, runner_event_fn fn, void *arg)
{
    read_output(r, a, now, fn, arg);
    if (!a->leader_gone) {
        if (a->deadline && now >= a->deadline && !a->terminating) {
            a->timed_out = true;
            terminate(r, a, now);
        }
        if (a->kill_at && now >= a->kill_at) {
            signal_group(a, SIGKILL);
            a->kill_at = 0;
        }
        reap(a, now);
        if (a->leader_gone)
            read_output(r, a, now, fn, arg);
    }
    if (a->leader_gone && (a->out_fd < 0 || now >= a->drain_until))
        a->done = true;
}

/* Offer the waiting output when a batch is full, OUTPUT_FLUSH_MS after the
 * last offer, or when forced (at exit). What the consumer refuses keeps
 * waiting, offered again OUTPUT_FLUSH_MS later (not per batch meanwhile). */
static void emit_output(attempt *a, uint64_t now, bool force, runner_event_fn fn, void *arg)
{
    if (a->fwd.len == 0)
        return;
    size_t batch = a->fwd.cap < OUTPUT_BATCH_BYTES ? a->fwd.cap : OUTPUT_BATCH_BYTES;
    if (!force && now - a->last_emit < OUTPUT_FLUSH_MS && (a->refused || a->fwd.len < batch))
        return;
    uint64_t start = a->total - a->fwd.len;
    size_t off = 0;
    a->refused = false;
    a->last_emit = now;
    while (off < a->fwd.len) {
        size_t n = a->fwd.len - off;
        if (n > OUTPUT_CHUNK_BYTES)
            n = OUTPUT_CHUNK_BYTES;
        runner_event ev = {.kind = RUNNER_OUTPUT,
                           .cluster_id = a->cluster_id,
                           .number = a->number,
                           .attempt = a->attempt,
                           .data = a->fwd.buf + off,
                           .len = n,
                           .offset = start + off,
                           .dropped = a->fwd_dropped};
        if (!fn(arg, &ev)) {
            a->refused = true;
            break;
        }
        a->fwd_dropped = 0;
        off += n;
    }
    memmove(a->fwd.buf, a->fwd.buf + off, a->fwd.len - off);
    a->fwd.len -= off;
}

/* The result file of an attempt that exited 0; NULL (and an error in the
 * attempt) when it is missing or too large. The caller frees it. */
static uint8_t *read_result(attempt *a, size_t *len)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", a->cwd, a->result_file);
    /* O_NONBLOCK: a FIFO put there must not hang the agent. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            fail(a, 0, "result file '%.100s' was not written", a->result_file);
        else
            fail(a, 0, "result file '%.100s': %s", a->result_file, strerror(errno));
        return NULL;
    }
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fail(a, 0, "result file '%.100s' is not a regular file", a->result_file);
    } else if ((uint64_t)st.st_size > a->result_max) {
        fail(a, 0, "result file '%.100s' is %lld bytes, over the limit of %u", a->result_file,
             (long long)st.st_size, a->result_max);
    } else if (!(buf = mu_malloc((size_t)st.st_size + 1))) {
        fail(a, 0, "result file '%.100s': out of memory", a->result_file);
    } else {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                fail(a, 0, "result file '%.100s': %s", a->result_file, strerror(errno));
                mu_free(buf);
                buf = NULL;
                break;
            }
            if (n == 0)
                break; /* it shrank: what is there is the result */
            got += (size_t)n;
        }
        *len = got;
    }
    close(fd);
    return buf;
}

static void emit_exit(attempt *a, runner_event_fn fn, void *arg)
{
    runner_event ev = {.kind = RUNNER_EXIT,
                       .cluster_id = a->cluster_id,
                       .number = a->number,
                       .attempt = a->attempt,
                       .data = a->tail.buf,
                       .len = a->tail.len,
                       .offset = a->total - a->tail.len,
                       .exit_code = -1,
                       .timed_out = a->timed_out,
                       .output_bytes = a->total};
    uint8_t *result = NULL;
    if (!a->started) {
        ev.exit_code = a->fail_code;
    } else if (WIFEXITED(a->status)) {
        ev.exit_code = WEXITSTATUS(a->status);
    } else if (WIFSIGNALED(a->status)) {
        ev.signal = WTERMSIG(a->status);
    }
    if (a->cancelled && !a->has_error) {
        a->has_error = true;
        snprintf(a->err.text, sizeof(a->err.text), "cancelled");
    }
    if (a->started && ev.exit_code == 0 && !a->timed_out && !a->has_error && a->result_file) {
        result = read_result(a, &ev.result_len);
        ev.result = result;
    }
    ev.error = a->has_error ? a->err.text : NULL;
    (void)fn(arg, &ev);
    mu_free(result);
}

void runner_process(runner *r, uint64_t now, runner_event_fn fn, void *arg)
{
    if (!r)
        return;
    attempt **pp = &r->head;
    while (*pp) {
        attempt *a = *pp;
        if (!a->done)
            step(r, a, now, fn, arg);
        emit_output(a, now, a->done, fn, arg);
        if (!a->done) {
            pp = &a->next;
            continue;
        }
        emit_exit(a, fn, arg);
        *pp = a->next;
        attempt_free(a);
        r->count--;
    }
}

/* --- polling -------------------------------------------------------------------- */

size_t runner_pollfds(const runner *r, struct pollfd *out, size_t max)
{
    size_t n = 0;
    for (const attempt *a = r ? r->head : NULL; a; a = a->next) {
        int fds[2] = {a->out_fd, a->leader_gone ? -1 : a->pidfd};
        for (int i = 0; i < 2; i++) {
            if (a->done || fds[i] < 0)
                continue;
            if (out && n < max)
                out[n] = (struct pollfd){.fd = fds[i], .events = POLLIN};
            n++;
        }
    }
    return n;
}

static void sooner(int64_t *best, uint64_t at, uint64_t now)
{
    int64_t ms = at > now ? (int64_t)(at - now) : 0;
    if (*best < 0 || ms < *best)
        *best = ms;
}

int runner_timeout_ms(const runner *r, uint64_t now)
{
    int64_t best = -1;
    for (const attempt *a = r ? r->head : NULL; a; a = a->next) {
        if (a->done)
            return 0;
        if (a->fwd.len)
            sooner(&best, a->last_emit + OUTPUT_FLUSH_MS, now);
        if (a->leader_gone) {
            sooner(&best, a->drain_until, now);
            continue;
        }
        if (a->deadline && !a->terminating)
            sooner(&best, a->deadline, now);
        if (a->kill_at)
            sooner(&best, a->kill_at, now);
        if (a->pidfd < 0)
            sooner(&best, now + FALLBACK_POLL_MS, now);
    }
    return best > INT_MAX ? INT_MAX : (int)best;
}

size_t runner_count(const runner *r)
{
    return r ? r->count : 0;
}

void runner_each(const runner *r,
                 void (*fn)(void *arg, const char *cluster_id, uint32_t number, uint32_t attempt),
                 void *arg)
{
    for (const attempt *a = r ? r->head : NULL; a; a = a->next)
        fn(arg, a->cluster_id, a->number, a->attempt);
}
