/* Messages, exit codes and the small parsers every command shares. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "jsonw.h"

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("tokenmgr: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_usage(const cli_command *cmd, const char *fmt, ...)
{
    va_list ap;

    fputs("tokenmgr: ", stderr);
    if (cmd != NULL)
        fprintf(stderr, "%s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (tokenmgr help%s%s for usage)\n", cmd ? " " : "",
            cmd ? cmd->name : "");
    return EXIT_USAGE;
}

int cli_exit_code(tkm_code rc)
{
    switch (rc) {
    case TKM_OK:
        return EXIT_OK;
    case TKM_EREDIS:
        return EXIT_UNAVAILABLE;
    case TKM_ECONFIG:
    case TKM_EIO:
        return EXIT_CONFIG;
    case TKM_EINVAL:
        return EXIT_USAGE;
    case TKM_EWAIT:
        return EXIT_DENIED;
    default:
        return EXIT_OTHER;
    }
}

int cli_lib_fail(tkm_client *c, tkm_code rc, const char *what)
{
    return cli_fail(cli_exit_code(rc), "%s: %s", what,
                    c && tkm_errstr(c)[0] ? tkm_errstr(c) : tkm_strerror(rc));
}

int cli_number(const char *flag, const char *text, int64_t min, int64_t max,
               int64_t *out)
{
    if (text == NULL)
        return cli_fail(EXIT_USAGE, "%s needs a value", flag);
    if (tkm_parse_int(text, min, max, out) != TKM_OK)
        return cli_fail(EXIT_USAGE,
                        "%s: '%.40s' is not a whole number in "
                        "%lld..%lld",
                        flag, text, (long long)min, (long long)max);
    return EXIT_OK;
}

int cli_duration(const char *flag, const char *text, int64_t max_s,
                 int64_t *out)
{
    static const struct {
        char unit;
        int64_t s;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    char digits[32];
    size_t n = strlen(text);
    int64_t mult = 1, v;

    if (n > 0 && n < sizeof(digits)) {
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (text[n - 1] == units[i].unit) {
                mult = units[i].s;
                n--;
                break;
            }
        }
        memcpy(digits, text, n);
        digits[n] = '\0';
        if (tkm_parse_int(digits, 1, max_s, &v) == TKM_OK &&
            v <= max_s / mult) {
            *out = v * mult;
            return EXIT_OK;
        }
    }
    return cli_fail(EXIT_USAGE,
                    "%s: '%.40s' is not a duration from 1s to %llds (90, 90s, "
                    "15m, 2h, 1d)",
                    flag, text, (long long)max_s);
}

int cli_json(tkm_client *c, tkm_code rc, char **json, const char *what)
{
    if (rc != TKM_OK)
        return cli_lib_fail(c, rc, what);
    puts(*json);
    tkm_free(*json);
    return EXIT_OK;
}

void cli_iso8601(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0 || gmtime_r(&s, &tm) == NULL) {
        snprintf(buf, len, "-");
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ms % 1000));
}

void cli_host(char *buf, size_t len)
{
    if (gethostname(buf, len) != 0)
        snprintf(buf, len, "unknown");
    buf[len - 1] = '\0';
}

void cli_json_string(const char *s)
{
    char out[TKM__JSONW_MAX(TKM_PATH_MAX + 64)];
    size_t n = strlen(s);

    if (n > TKM_PATH_MAX + 64)
        n = TKM_PATH_MAX + 64;
    tkm__jsonw_escape(out, sizeof(out), s, n, NULL);
    printf("\"%s\"", out);
}
