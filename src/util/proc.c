/*
 * proc.c - fork/exec with pipes and poll().
 *
 * Exec failures are reported through a close-on-exec pipe: the child writes errno to it when
 * execvp fails, and the parent reads either that errno or EOF (exec succeeded). This gives a real
 * "cannot execute foo: No such file or directory" instead of a mysterious exit status 127.
 */
#include "util/proc.h"

#include "util/clock.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* In the child after fork: wire fds, own process group, exec. Never returns. */
static void child_exec(char *const argv[], int in_fd, int out_fd, int err_fd, int report_fd,
                       char *const envp[])
{
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    if (in_fd >= 0 && dup2(in_fd, 0) < 0)
        goto fail;
    if (out_fd >= 0 && dup2(out_fd, 1) < 0)
        goto fail;
    if (err_fd >= 0 && dup2(err_fd, 2) < 0)
        goto fail;
    if (envp)
        execvpe(argv[0], argv, envp);
    else
        execvp(argv[0], argv);
fail:;
    int e = errno;
    ssize_t w = write(report_fd, &e, sizeof e);
    (void)w;
    _exit(127);
}

/* Read the exec-report pipe: 0 if exec succeeded, else the child's errno. */
static int read_exec_report(int fd)
{
    int e = 0;
    ssize_t r;
    do {
        r = read(fd, &e, sizeof e);
    } while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof e ? e : 0;
}

static void fill_status(struct proc_result *res, int status)
{
    if (WIFEXITED(status)) {
        res->exited = true;
        res->exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        res->signaled = true;
        res->term_signal = WTERMSIG(status);
    }
}

/* One proc_run: the child, its pipes (parent ends; -1 when closed) and its timeout. */
struct run {
    pid_t pid;
    int in_p[2], out_p[2], err_p[2], rep_p[2];
    const char *in_data; /* stdin bytes not yet written */
    size_t in_left;
    uint64_t deadline; /* 0: no timeout */
    uint64_t kill_at;  /* SIGKILL due (a second after SIGTERM); 0: none */
    bool term_sent;
};

static void run_close_all(struct run *rn)
{
    close_fd(&rn->in_p[0]);
    close_fd(&rn->in_p[1]);
    close_fd(&rn->out_p[0]);
    close_fd(&rn->out_p[1]);
    close_fd(&rn->err_p[0]);
    close_fd(&rn->err_p[1]);
    close_fd(&rn->rep_p[0]);
    close_fd(&rn->rep_p[1]);
}

/* The timeout: SIGTERM to the child's process group at the deadline, SIGKILL a second later. */
static void run_enforce_timeout(struct run *rn, struct proc_result *res)
{
    uint64_t now = clock_now_ns();
    if (rn->deadline && !rn->term_sent && now >= rn->deadline) {
        kill(-rn->pid, SIGTERM);
        rn->term_sent = true;
        res->timed_out = true;
        rn->kill_at = now + 1000000000ull;
    }
    if (rn->kill_at && now >= rn->kill_at) {
        kill(-rn->pid, SIGKILL);
        rn->kill_at = 0;
    }
}

/* Make the pipes, fork and exec. Returns 0 once the child runs argv[0], or -1 with err. */
static int run_start(struct run *rn, char *const argv[], bool merge, char *err)
{
    if (pipe2(rn->in_p, O_CLOEXEC) < 0 || pipe2(rn->out_p, O_CLOEXEC) < 0 ||
        (!merge && pipe2(rn->err_p, O_CLOEXEC) < 0) || pipe2(rn->rep_p, O_CLOEXEC) < 0)
        return err_set(err, "pipe: %s", strerror(errno));
    rn->pid = fork();
    if (rn->pid < 0)
        return err_set(err, "fork: %s", strerror(errno));
    if (rn->pid == 0)
        child_exec(argv, rn->in_p[0], rn->out_p[1], merge ? rn->out_p[1] : rn->err_p[1],
                   rn->rep_p[1], NULL);
    setpgid(rn->pid, rn->pid);
    close_fd(&rn->in_p[0]);
    close_fd(&rn->out_p[1]);
    close_fd(&rn->err_p[1]);
    close_fd(&rn->rep_p[1]);
    int exec_errno = read_exec_report(rn->rep_p[0]);
    close_fd(&rn->rep_p[0]);
    if (exec_errno) {
        waitpid(rn->pid, NULL, 0);
        return err_set(err, "cannot execute %s: %s", argv[0], strerror(exec_errno));
    }
    return 0;
}

/* Read what is ready on the child's stdout (k 0) or stderr (k 1) into res, up to max_capture.
 * Returns -1 when the output cannot be kept (out of memory). */
static int run_read(struct run *rn, int k, struct proc_result *res, size_t max_capture)
{
    char chunk[16384];
    int *fd = k == 0 ? &rn->out_p[0] : &rn->err_p[0];
    struct buf *dst = k == 0 ? &res->out : &res->err_out;
    ssize_t r = read(*fd, chunk, sizeof chunk);
    if (r > 0) {
        size_t room = dst->len < max_capture ? max_capture - dst->len : 0;
        size_t take = (size_t)r < room ? (size_t)r : room;
        if (take)
            buf_append(dst, chunk, take);
        if (buf_failed(dst))
            return -1;
    } else if (r == 0 || errno != EINTR) {
        close_fd(fd);
    }
    return 0;
}

/* Write what the child's stdin takes now; closed when all is written or it fails. */
static void run_write(struct run *rn)
{
    ssize_t w = write(rn->in_p[1], rn->in_data, rn->in_left);
    if (w > 0) {
        rn->in_data += w;
        rn->in_left -= (size_t)w;
    }
    if ((w < 0 && errno != EAGAIN && errno != EINTR) || rn->in_left == 0)
        close_fd(&rn->in_p[1]);
}

/* Feed stdin and capture stdout/stderr until the child closes both, under the timeout. Returns
 * 0, or -1 with err (the child killed and reaped). */
static int run_pump(struct run *rn, struct proc_result *res, size_t max_capture, char *err)
{
    while (rn->out_p[0] >= 0 || rn->err_p[0] >= 0) {
        struct pollfd pfd[3];
        int n = 0, idx[2] = {-1, -1}, i_in = -1;
        if (rn->out_p[0] >= 0) {
            pfd[n] = (struct pollfd){rn->out_p[0], POLLIN, 0};
            idx[0] = n++;
        }
        if (rn->err_p[0] >= 0) {
            pfd[n] = (struct pollfd){rn->err_p[0], POLLIN, 0};
            idx[1] = n++;
        }
        if (rn->in_p[1] >= 0) {
            pfd[n] = (struct pollfd){rn->in_p[1], POLLOUT, 0};
            i_in = n++;
        }
        run_enforce_timeout(rn, res);
        int pr = poll(pfd, (nfds_t)n, 200);
        if (pr < 0 && errno != EINTR) {
            err_set(err, "poll: %s", strerror(errno));
            kill(-rn->pid, SIGKILL);
            waitpid(rn->pid, NULL, 0);
            return -1;
        }
        if (pr <= 0)
            continue;
        for (int k = 0; k < 2; k++) {
            if (idx[k] < 0 || !(pfd[idx[k]].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (run_read(rn, k, res, max_capture) < 0) {
                err_set(err, "out of memory capturing output");
                kill(-rn->pid, SIGKILL);
                waitpid(rn->pid, NULL, 0);
                return -1;
            }
        }
        if (i_in >= 0 && (pfd[i_in].revents & (POLLOUT | POLLERR | POLLHUP)))
            run_write(rn);
    }
    return 0;
}

/* Output closed; the child may still be running (it closed stdout). Wait for it under the
 * timeout. Returns 0 with res's status filled, or -1 with err. */
static int run_reap(struct run *rn, struct proc_result *res, char *err)
{
    int status = 0;
    for (;;) {
        pid_t w = waitpid(rn->pid, &status, WNOHANG);
        if (w == rn->pid)
            break;
        if (w < 0 && errno != EINTR)
            return err_set(err, "waitpid: %s", strerror(errno));
        run_enforce_timeout(rn, res);
        clock_sleep_ns(5000000, NULL);
    }
    fill_status(res, status);
    return 0;
}

int proc_run(char *const argv[], const char *stdin_data, double timeout_s, size_t max_capture,
             int flags, struct proc_result *res, char *err)
{
    memset(res, 0, sizeof *res);
    struct run rn = {.in_p = {-1, -1}, .out_p = {-1, -1}, .err_p = {-1, -1}, .rep_p = {-1, -1}};
    if (run_start(&rn, argv, flags & PROC_MERGE_STDERR, err) < 0) {
        run_close_all(&rn);
        return -1;
    }
    rn.in_data = stdin_data ? stdin_data : "";
    rn.in_left = strlen(rn.in_data);
    if (rn.in_left == 0)
        close_fd(&rn.in_p[1]);
    else
        fcntl(rn.in_p[1], F_SETFL, O_NONBLOCK);
    rn.deadline = timeout_s > 0 ? clock_now_ns() + (uint64_t)(timeout_s * 1e9) : 0;
    int rc = run_pump(&rn, res, max_capture, err);
    close_fd(&rn.in_p[1]);
    if (rc == 0)
        rc = run_reap(&rn, res, err);
    run_close_all(&rn);
    return rc;
}

int proc_run_shell(const char *cmdline, double timeout_s, size_t max_capture, int flags,
                   struct proc_result *res, char *err)
{
    char *argv[] = {"sh", "-c", (char *)cmdline, NULL};
    return proc_run(argv, NULL, timeout_s, max_capture, flags, res, err);
}

void proc_result_free(struct proc_result *res)
{
    buf_free(&res->out);
    buf_free(&res->err_out);
}

/* environ with extra "NAME=value" entries replacing or adding to it, built before fork because
 * the child of a threaded parent may not allocate. Caller frees the array (not the strings). */
static char **build_env(char *const extra[])
{
    size_t n_env = 0, n_extra = 0;
    while (environ[n_env])
        n_env++;
    while (extra && extra[n_extra])
        n_extra++;
    char **envp = calloc(n_env + n_extra + 1, sizeof *envp);
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t name_len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = false;
        for (size_t j = 0; j < n_extra && !replaced; j++)
            replaced = strncmp(extra[j], environ[i], name_len) == 0 && extra[j][name_len] == '=';
        if (!replaced)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < n_extra; j++)
        envp[k++] = extra[j];
    return envp;
}

int proc_spawn(char *const argv[], const char *log_path, char *const extra_env[],
               struct proc_child *child, char *err)
{
    memset(child, 0, sizeof *child);
    char **envp = NULL;
    if (extra_env && !(envp = build_env(extra_env)))
        return err_set(err, "out of memory building the environment");
    int log_fd = -1, null_fd = -1, rep_p[2] = {-1, -1};
    if (log_path) {
        log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log_fd < 0) {
            free(envp);
            return err_set(err, "cannot open %s: %s", log_path, strerror(errno));
        }
    }
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || pipe2(rep_p, O_CLOEXEC) < 0) {
        err_set(err, "cannot set up child: %s", strerror(errno));
        goto fail;
    }
    pid_t pid = fork();
    if (pid < 0) {
        err_set(err, "fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0)
        child_exec(argv, null_fd, log_fd, log_fd, rep_p[1], envp);
    free(envp);
    envp = NULL;
    setpgid(pid, pid);
    close_fd(&rep_p[1]);
    int exec_errno = read_exec_report(rep_p[0]);
    close_fd(&rep_p[0]);
    close_fd(&log_fd);
    close_fd(&null_fd);
    if (exec_errno) {
        waitpid(pid, NULL, 0);
        return err_set(err, "cannot execute %s: %s", argv[0], strerror(exec_errno));
    }
    child->pid = pid;
    return 0;
fail:
    free(envp);
    close_fd(&log_fd);
    close_fd(&null_fd);
    close_fd(&rep_p[0]);
    close_fd(&rep_p[1]);
    return -1;
}

bool proc_alive(struct proc_child *child)
{
    if (child->reaped || child->pid <= 0)
        return false;
    pid_t w = waitpid(child->pid, &child->status, WNOHANG);
    if (w == child->pid) {
        child->reaped = true;
        return false;
    }
    return w == 0;
}

static int status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int proc_stop(struct proc_child *child, int sig, double grace_s)
{
    if (child->pid <= 0)
        return -1;
    if (!proc_alive(child))
        return child->reaped ? status_code(child->status) : -1;
    kill(-child->pid, sig);
    uint64_t deadline = clock_now_ns() + (uint64_t)(grace_s * 1e9);
    while (clock_now_ns() < deadline) {
        if (!proc_alive(child))
            return status_code(child->status);
        clock_sleep_ns(10000000, NULL);
    }
    kill(-child->pid, SIGKILL);
    while (waitpid(child->pid, &child->status, 0) < 0 && errno == EINTR) {
    }
    child->reaped = true;
    return status_code(child->status);
}
