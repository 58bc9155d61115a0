/*
 * testsrv.c - scripted test server. One thread accepts; each connection gets a thread; stop
 * shuts the listening socket and every connection down and joins all threads.
 */
#include "support/testsrv.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256

struct testsrv {
    int listen_fd;
    int port;
    testsrv_handler handler;
    void *user;
    pthread_t acceptor;
    pthread_mutex_t lock;
    pthread_t conn_threads[MAX_CONNS];
    int conn_fds[MAX_CONNS];
    int n_conns;
    _Atomic int stopping;
};

struct conn_arg {
    struct testsrv *s;
    int fd;
};

void testsrv_write(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        len -= (size_t)w;
    }
}

void testsrv_write_str(int fd, const char *s)
{
    testsrv_write(fd, s, strlen(s));
}

void testsrv_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int testsrv_unused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Read one request. Returns 1 on success, 0 on EOF/error. */
static int read_request(int fd, struct testsrv_request *req, char *buf, size_t cap, size_t *have)
{
    for (;;) {
        buf[*have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            size_t head_len = (size_t)(end - buf) + 4;
            memset(req, 0, sizeof *req);
            if (sscanf(buf, "%15s %511s", req->method, req->path) != 2)
                return 0;
            char *line = strstr(buf, "\r\n");
            size_t hlen = line ? (size_t)(end - (line + 2)) : 0;
            if (hlen >= sizeof req->headers)
                hlen = sizeof req->headers - 1;
            if (line)
                memcpy(req->headers, line + 2, hlen);
            req->headers[hlen] = '\0';
            for (char *p = req->headers; *p; p++) {
                /* lower-case header names only (up to each colon) */
                char *colon = strchr(p, ':');
                char *eol = strstr(p, "\r\n");
                if (!colon)
                    break;
                for (char *q = p; q < colon; q++)
                    *q = (char)tolower((unsigned char)*q);
                if (!eol)
                    break;
                p = eol + 1;
            }
            size_t body_len = 0;
            char *cl = strstr(req->headers, "content-length:");
            if (cl)
                body_len = strtoul(cl + 15, NULL, 10);
            while (*have < head_len + body_len && *have < cap - 1) {
                ssize_t r = recv(fd, buf + *have, cap - 1 - *have, 0);
                if (r <= 0)
                    return 0;
                *have += (size_t)r;
            }
            req->body = malloc(body_len + 1);
            if (!req->body)
                return 0;
            memcpy(req->body, buf + head_len, body_len);
            req->body[body_len] = '\0';
            req->body_len = body_len;
            size_t used = head_len + body_len;
            memmove(buf, buf + used, *have - used);
            *have -= used;
            return 1;
        }
        if (*have >= cap - 1)
            return 0;
        ssize_t r = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (r <= 0)
            return 0;
        *have += (size_t)r;
    }
}

static void *conn_main(void *arg)
{
    struct conn_arg *ca = arg;
    struct testsrv *s = ca->s;
    int fd = ca->fd;
    free(ca);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    size_t have = 0;
    struct testsrv_request req;
    while (buf && !s->stopping && read_request(fd, &req, buf, cap, &have)) {
        bool keep = s->handler(fd, &req, s->user);
        free(req.body);
        if (!keep)
            break;
    }
    free(buf);
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *accept_main(void *arg)
{
    struct testsrv *s = arg;
    while (!s->stopping) {
        struct pollfd p = {s->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&s->lock);
        if (s->n_conns >= MAX_CONNS) {
            pthread_mutex_unlock(&s->lock);
            close(fd);
            continue;
        }
        struct conn_arg *ca = malloc(sizeof *ca);
        if (!ca) {
            pthread_mutex_unlock(&s->lock);
            close(fd);
            continue;
        }
        ca->s = s;
        ca->fd = fd;
        s->conn_fds[s->n_conns] = fd;
        if (pthread_create(&s->conn_threads[s->n_conns], NULL, conn_main, ca) != 0) {
            free(ca);
            close(fd);
        } else {
            s->n_conns++;
        }
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

struct testsrv *testsrv_start(testsrv_handler handler, void *user)
{
    struct testsrv *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->handler = handler;
    s->user = user;
    pthread_mutex_init(&s->lock, NULL);
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(s->listen_fd, 128) < 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&a, &len) < 0) {
        if (s->listen_fd >= 0)
            close(s->listen_fd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->acceptor, NULL, accept_main, s) != 0) {
        close(s->listen_fd);
        free(s);
        return NULL;
    }
    return s;
}

int testsrv_port(const struct testsrv *s)
{
    return s->port;
}

int testsrv_connections(const struct testsrv *s)
{
    pthread_mutex_lock((pthread_mutex_t *)&s->lock);
    int n = s->n_conns;
    pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
    return n;
}

void testsrv_stop(struct testsrv *s)
{
    if (!s)
        return;
    s->stopping = 1;
    pthread_join(s->acceptor, NULL);
    close(s->listen_fd);
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_conns; i++)
        shutdown(s->conn_fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < s->n_conns; i++) {
        pthread_join(s->conn_threads[i], NULL);
        close(s->conn_fds[i]);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}
