/*
 * testsrv.h - a scripted HTTP/1.1 server on 127.0.0.1 for tests of the client side.
 *
 * It binds an ephemeral port, accepts connections in a thread, parses each request (request
 * line, headers, Content-Length body) and hands it to the test's handler, which writes whatever
 * raw bytes it likes (split, delayed, truncated) to the socket. Everything it starts is joined by
 * testsrv_stop, so a test leaves no thread or socket behind.
 */
#ifndef KVBENCH_TESTS_TESTSRV_H
#define KVBENCH_TESTS_TESTSRV_H

#include <stdbool.h>
#include <stddef.h>

struct testsrv_request {
    char method[16];
    char path[512];
    char headers[4096]; /* raw header block, lower-cased names */
    char *body;
    size_t body_len;
};

/* Handle one request on fd. Return true to keep the connection for another request. */
typedef bool (*testsrv_handler)(int fd, const struct testsrv_request *req, void *user);

struct testsrv;

struct testsrv *testsrv_start(testsrv_handler handler, void *user);
int testsrv_port(const struct testsrv *s);
/* Number of TCP connections accepted so far. */
int testsrv_connections(const struct testsrv *s);
void testsrv_stop(struct testsrv *s);

/* Write all bytes (ignores EPIPE). */
void testsrv_write(int fd, const void *data, size_t len);
void testsrv_write_str(int fd, const char *s);
void testsrv_sleep_ms(int ms);
/* A free TCP port on 127.0.0.1 (bound and released; for tests that need a refused port). */
int testsrv_unused_port(void);

#endif
