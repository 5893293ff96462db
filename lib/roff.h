/*
 * roff text for the manual pages (roff.c).  Dependency-free like jsonw.c:
 * the command-line tool (tokenmgr(1)) and the plugin's page generator
 * (collectd-tokenmgr(5)) compile the same file.
 */
#ifndef TKM_ROFF_H
#define TKM_ROFF_H

#include <stdio.h>

/* Text on a line of its own: backslashes escaped, hyphens unambiguous,
 * never a line that starts with a control character. */
void tkm__roff_text(FILE *out, const char *s);

/* The same inside a quoted macro argument ("..."), where a double quote
 * is \(dq. */
void tkm__roff_arg(FILE *out, const char *s);

#endif
