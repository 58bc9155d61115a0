/*
 * prompt.c - freeing prompts (prompt.h). A prompt's text may be dropped and made again while its
 * identity stays (a --duration-s run cycles a ring of prompts whose texts it re-makes).
 */
#include "load/prompt.h"

#include <stdlib.h>

void prompt_drop_text(struct prompt *p)
{
    free(p->text);
    p->text = NULL;
    free(p->msgs);
    p->msgs = NULL;
    p->n_msgs = 0;
}

int prompt_set_msgs(struct prompt *p, const enum chat_role *roles, const struct chat_span *spans,
                    size_t n)
{
    struct prompt_msg *m = calloc(n ? n : 1, sizeof *m);
    if (!m)
        return -1;
    for (size_t i = 0; i < n; i++) {
        m[i].role = roles[i];
        m[i].span = spans[i];
    }
    free(p->msgs);
    p->msgs = m;
    p->n_msgs = n;
    return 0;
}

void prompts_free(struct prompt *prompts, size_t n)
{
    if (!prompts)
        return;
    for (size_t i = 0; i < n; i++)
        prompt_drop_text(&prompts[i]);
    free(prompts);
}
