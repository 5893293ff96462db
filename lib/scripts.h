/* The Lua scripts that hold the bucket policy (generated from lib/lua). */
#ifndef TKM_SCRIPTS_H
#define TKM_SCRIPTS_H

typedef enum tkm__script_id {
    TKM__SCRIPT_ACQUIRE,
    TKM__SCRIPT_COMPLETE,
    TKM__SCRIPT_RELEASE,
    TKM__SCRIPT_SYNC,
    TKM__SCRIPT_STATUS,
    TKM__SCRIPT_RECHARGE,
    TKM__SCRIPT_RESET,
    TKM__SCRIPT_HEARTBEAT,
    TKM__SCRIPT_WORKERS,
    TKM__SCRIPT_SYNC_CLAIM,
    TKM__SCRIPT_RECOVERY,
    TKM__SCRIPT_RECOVERY_LOG,
    TKM__SCRIPT_LEGACY,
    TKM__SCRIPT_COUNT
} tkm__script_id;

typedef struct tkm__script {
    const char *name;
    const char *sha1; /* hex, what EVALSHA takes */
    const char *text;
} tkm__script;

/* Indexed by tkm__script_id; the order matches TKM_LUA_OPS in CMakeLists.txt.
 */
extern const tkm__script tkm__scripts[TKM__SCRIPT_COUNT];

#endif
