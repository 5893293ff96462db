/* The YAML configuration loader, on the bytes as a file's contents. */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tkm_options o;
    char err[TKM__ERR_MAX];
    tkm_code rc;

    memset(err, 'x', sizeof(err));
    tkm_options_init(&o);
    rc = tkm__config_load_string("fuzz.yaml", (const char *)data, size, &o, err,
                                 sizeof(err));
    /* A message always ends within its buffer. */
    FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL || rc == TKM_OK);
    if (rc == TKM_OK) {
        /* What the loader accepts, the validator accepts. */
        FUZZ_ASSERT(tkm_options_validate(&o, err, sizeof(err)) == TKM_OK);
    } else {
        FUZZ_ASSERT(rc == TKM_ECONFIG || rc == TKM_ENOMEM);
        FUZZ_ASSERT(strncmp(err, "fuzz.yaml", 9) == 0);
    }
    return 0;
}
