/*
 * container.h - what Docker knows about the serving container: its logs, its cuFile logs, its
 * image. Every call has a timeout and reports why it was skipped or failed; none is fatal.
 */
#ifndef KVBENCH_PROBE_CONTAINER_H
#define KVBENCH_PROBE_CONTAINER_H

#include <jansson.h>

/* Is a `docker` executable on PATH? */
int container_docker_present(void);
/* {container, image, image_id} of a running or stopped container, or NULL with err. */
json_t *container_inspect(const char *name, double timeout_s, char *err);
/* `docker logs NAME` into path. Returns 0 or -1 with err. */
int container_logs(const char *name, const char *path, double timeout_s, char *err);
/* `docker cp NAME:SRC DEST`. Returns 0 or -1 with err. */
int container_copy(const char *name, const char *src, const char *dest, double timeout_s,
                   char *err);

#endif
