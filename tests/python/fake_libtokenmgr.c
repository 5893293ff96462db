/* A stand-in libtokenmgr for the Python binding's load checks: a library
 * of another version (FAKE_VERSION), or of the right version that lacks
 * the binding's calls.  Nothing else. */
#ifndef FAKE_VERSION
#define FAKE_VERSION "0.0.7"
#endif

__attribute__((visibility("default"))) const char *tkm_version(void);

const char *tkm_version(void)
{
    return FAKE_VERSION;
}
