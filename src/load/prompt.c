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
}

void prompts_free(struct prompt *prompts, size_t n)
{
    if (!prompts)
        return;
    for (size_t i = 0; i < n; i++)
        free(prompts[i].text);
    free(prompts);
}
