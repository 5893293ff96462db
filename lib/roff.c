/* roff text for the manual pages: see roff.h. */
#include "roff.h"

static void escaped(FILE *out, const char *s, int quoted)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-')
            fputs("\\-", out);
        else if (quoted && *s == '"')
            fputs("\\(dq", out);
        else
            fputc(*s, out);
    }
}

void tkm__roff_text(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", out);
    escaped(out, s, 0);
}

void tkm__roff_arg(FILE *out, const char *s)
{
    escaped(out, s, 1);
}
