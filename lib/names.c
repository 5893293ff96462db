/* The names users choose: pool names and worker ids, checked one way. */
#include <ctype.h>
#include <string.h>

#include "internal.h"

static int name_valid(const char *s, size_t max, const char *extra)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        unsigned char ch = (unsigned char)s[n];
        if (!isalnum(ch) && strchr(extra, ch) == NULL)
            return 0;
        if (n >= max)
            return 0;
    }
    return n > 0 && n <= max;
}

int tkm__pool_name_valid(const char *name)
{
    return name_valid(name, TKM_POOL_MAX, "_.-");
}

int tkm__worker_id_valid(const char *id)
{
    return name_valid(id, TKM_WORKER_ID_MAX, "_.:@-");
}
