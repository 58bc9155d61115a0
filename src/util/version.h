/* version.h - the version and git SHA baked in at build time (build/version_gen.c). */
#ifndef KVBENCH_UTIL_VERSION_H
#define KVBENCH_UTIL_VERSION_H

extern const char *const KVBENCH_VERSION;
extern const char *const KVBENCH_GIT_SHA;

#endif
