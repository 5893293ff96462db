/*
 * Script calls: how the library builds a script's KEYS and ARGV and reads
 * its reply (script.c), from what each script in lib/lua declares (@keys,
 * @policy, @call; cmake/embed_lua.cmake turns the declarations into the
 * generated scripts.h and scripts.c).  One call is one EVALSHA.
 */
#ifndef TKM_SCRIPT_H
#define TKM_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "scripts.h" /* generated: the ids and the reply fields' indices */
#include "tokenmgr.h"

/* The key sets a script may take, in KEYS order (`@keys`). */
#define TKM__KEYS_POOL   1u /* the pool's 8 keys (prelude.lua) */
#define TKM__KEYS_GUARD  2u /* the recovery guard's 4 keys (recovery.lua) */
#define TKM__NKEYS_POOL  8
#define TKM__NKEYS_GUARD 4

typedef struct tkm__script {
    const char *name;
    const char *sha1; /* hex, what EVALSHA takes */
    const char *text; /* with prelude.lua first when `policy` */
    unsigned keys;    /* TKM__KEYS_* */
    int policy;       /* 1: ARGV[1..TKM__NPOLICY] are the policy */
    int no_writes;    /* 1: flagged read-only (#!lua flags=no-writes) */
} tkm__script;

/* One call of a script (`@call NAME(ARGS) -> REPLY`). */
typedef struct tkm__call_decl {
    const char *name; /* "acquire", "recovery.decide" */
    tkm__script_id script;
    const char *command; /* sent as op[1] before the arguments, or NULL */
    int nargs;           /* the arguments the caller sends */
    int args_open;       /* 1: and any number more (a last NAME...) */
    int nfields;         /* the reply: nfields named values first, */
    const char *const *fields;
    int nrow; /* then, when nrow > 0, rows of nrow values; */
    const char *const *row;
    int open; /* or, when open, what the caller reads itself */
} tkm__call_decl;

/* Indexed by tkm__script_id and tkm__call_id (generated). */
extern const tkm__script tkm__scripts[TKM__SCRIPT_COUNT];
extern const tkm__call_decl tkm__calls[TKM__CALL_COUNT];

/* A value of a script's flat reply. */
#define TKM__VALUE_STR_MAX 256
typedef struct tkm__value {
    int is_int;
    int is_nil; /* a nil reply (a missing key) */
    int64_t i;
    size_t len; /* the string's length in the reply (s may be cut) */
    char s[TKM__VALUE_STR_MAX];
} tkm__value;

/*
 * A call being built: KEYS, then the policy, then the operation's arguments,
 * with the numbers' text kept here (nothing is allocated).  Whatever is
 * pushed past the arrays, or a number outside its range
 * (tkm__call_int_in), is refused: tkm__call_run then fails with TKM_EINVAL
 * without sending anything.
 */
#define TKM__NPOLICY     13
#define TKM__MAX_OP_ARGS 20
#define TKM__NUM_LEN     24 /* "%lld" of any int64_t, with its NUL */
#define TKM__ARGV_MAX                                                          \
    (TKM__NKEYS_POOL + TKM__NKEYS_GUARD + TKM__NPOLICY + TKM__MAX_OP_ARGS)
typedef struct tkm__call {
    const tkm__call_decl *decl;
    const char *argv[TKM__ARGV_MAX]; /* KEYS, then ARGV */
    char num[TKM__NPOLICY + TKM__MAX_OP_ARGS][TKM__NUM_LEN];
    int argc;
    int nkeys;
    int nnum;
    int nop;      /* the operation's arguments pushed, the command included */
    int overflow; /* something did not fit */
    char refused[200]; /* the first number out of its range, or "" */
} tkm__call;

/*
 * Start call `id` on client c: its script's key sets (the guard's key names
 * are written into c), the policy when the script takes it, and the
 * command.  The caller then pushes the declared arguments in order.
 */
void tkm__call_init(tkm__call *k, tkm_client *c, tkm__call_id id);
void tkm__call_int(tkm__call *k, int64_t v);
void tkm__call_str(tkm__call *k, const char *s); /* s must outlive the run */
/*
 * A number that must lie in lo..hi: every number a caller hands to a script
 * enters through here, so that a value the pool's state cannot hold is
 * refused where it enters (tkm__call_run: TKM_EINVAL, nothing sent, the
 * message naming `name`, the value, its range and `unit`).
 */
void tkm__call_int_in(tkm__call *k, const char *name, int64_t v, int64_t lo,
                      int64_t hi, const char *unit);

/*
 * Run the call (one EVALSHA; EVAL on NOSCRIPT) and copy its reply into
 * out[0..maxout).  The reply must have the declared shape: exactly nfields
 * values, nfields plus whole rows, or (open) at least nfields; anything else
 * is TKM_EPROTO naming the call.  *nout (may be NULL) receives the count.
 * TKM_EINVAL, with nothing sent, when the arguments do not match the
 * declaration or did not fit.
 */
tkm_code tkm__call_run(tkm_client *c, tkm__call *k, tkm__value *out, int maxout,
                       int *nout);
/* The same, with out[] allocated to fit the reply: the caller frees *out
 * on success; on failure *out is NULL. */
tkm_code tkm__call_run_alloc(tkm_client *c, tkm__call *k, tkm__value **out,
                             int *nout);

#endif
