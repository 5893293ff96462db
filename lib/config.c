/*
 * The YAML loader: the only file that talks to libyaml.  It only walks the
 * document and hands every value, as text, to the options table
 * (options.c), which checks it; messages name the file, line and column.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "internal.h"

/* ---- YAML ------------------------------------------------------------- */

typedef struct loader {
    const char *path;
    yaml_document_t *doc;
    tkm_options *opts;
    char *errbuf;
    size_t errlen;
    yaml_mark_t marks[TKM_OPTION_SLOTS]; /* where each option was set */
    unsigned char marked[TKM_OPTION_SLOTS];
} loader;

/* "path:line:col: " of a node. */
static void where(const loader *ld, const yaml_node_t *node, char *buf,
                  size_t len)
{
    tkm__fmt(buf, len, "%s:%zu:%zu: ", ld->path, node->start_mark.line + 1,
             node->start_mark.column + 1);
}

static tkm_code at(loader *ld, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tkm_code at(loader *ld, const yaml_node_t *node, const char *fmt, ...)
{
    char msg[TKM__ERR_MAX], w[TKM__ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    where(ld, node, w, sizeof(w));
    tkm__fmt(ld->errbuf, ld->errlen, "%s%s", w, msg);
    return TKM_ECONFIG;
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A list option: a sequence of scalars. */
static tkm_code set_list(loader *ld, const char *key, const yaml_node_t *v)
{
    const char *items[64];
    size_t n = 0;
    char w[TKM__ERR_MAX];

    if (v->type != YAML_SEQUENCE_NODE)
        return at(ld, v, "%s must be a list: [\"a\", \"b\"]", key);
    for (yaml_node_item_t *it = v->data.sequence.items.start;
         it < v->data.sequence.items.top; it++) {
        const yaml_node_t *e = yaml_document_get_node(ld->doc, *it);
        if (e->type != YAML_SCALAR_NODE)
            return at(ld, e, "%s items must be strings", key);
        if (n == sizeof(items) / sizeof(items[0]))
            return at(ld, e, "%s has more than %zu items", key, n);
        items[n++] = scalar(e);
    }
    where(ld, v, w, sizeof(w));
    return tkm_options_set_list_from(ld->opts, key, items, n, TKM_SOURCE_FILE,
                                     w, ld->errbuf, ld->errlen);
}

/* One option: its YAML path and value node. */
static tkm_code set_option(loader *ld, const char *key, const yaml_node_t *k,
                           const yaml_node_t *v)
{
    char hint[128], w[TKM__ERR_MAX], quoted[TKM__ERR_MAX];
    int i = tkm_option_lookup(key, TKM_SOURCE_FILE, NULL, hint, sizeof(hint));
    const char *text;
    tkm_code rc;

    if (i < 0)
        return at(ld, k, "unknown option '%s'%s", key, hint);
    if (tkm__option_is_list(i)) {
        rc = set_list(ld, key, v);
    } else if (v->type != YAML_SCALAR_NODE) {
        return at(ld, v, "%s must be a single value, not a %s", key,
                  v->type == YAML_MAPPING_NODE ? "mapping" : "list");
    } else {
        text = scalar(v);
        /* A quoted "20" is a string: only text options take one. */
        if (!tkm__option_is_text(i) &&
            v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
            tkm__fmt(quoted, sizeof(quoted), "\"%.60s\"", text);
            text = quoted;
        }
        where(ld, v, w, sizeof(w));
        rc = tkm_options_set_from(ld->opts, key, text, TKM_SOURCE_FILE, w,
                                  ld->errbuf, ld->errlen);
    }
    if (rc == TKM_OK) {
        ld->marks[i] = v->start_mark;
        ld->marked[i] = 1;
    }
    return rc;
}

typedef tkm_code (*pair_fn)(loader *ld, const char *section,
                            const yaml_node_t *key, const yaml_node_t *value);

/* Walk a mapping, rejecting duplicate and non-scalar keys. */
static tkm_code each_pair(loader *ld, const yaml_node_t *map,
                          const char *section, pair_fn fn)
{
    yaml_node_pair_t *p;

    if (map->type != YAML_MAPPING_NODE)
        return at(ld, map, "%s%s must be a mapping",
                  section[0] ? section : "the document",
                  section[0] ? " section" : "");
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = yaml_document_get_node(ld->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(ld->doc, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return at(ld, k, "keys must be plain names");
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            const yaml_node_t *prev = yaml_document_get_node(ld->doc, q->key);
            if (prev->type == YAML_SCALAR_NODE &&
                strcmp(scalar(prev), scalar(k)) == 0)
                return at(ld, k, "duplicate key '%s%s%s'", section,
                          section[0] ? "." : "", scalar(k));
        }
        tkm_code rc = fn(ld, section, k, v);
        if (rc != TKM_OK)
            return rc;
    }
    return TKM_OK;
}

static tkm_code section_pair(loader *ld, const char *section,
                             const yaml_node_t *k, const yaml_node_t *v)
{
    char key[160];

    tkm__fmt(key, sizeof(key), "%s.%s", section, scalar(k));
    return set_option(ld, key, k, v);
}

/* A top-level name that is a section ("bucket": some option is under it). */
static int is_section(const char *name)
{
    size_t n = strlen(name);
    tkm_option_info info;

    for (size_t i = 0; i < tkm_option_count(); i++) {
        tkm_option_describe(i, &info);
        if (strncmp(info.key, name, n) == 0 && info.key[n] == '.')
            return 1;
    }
    return 0;
}

static tkm_code top_pair(loader *ld, const char *section, const yaml_node_t *k,
                         const yaml_node_t *v)
{
    const char *name = scalar(k);

    (void)section;
    if (is_section(name))
        return each_pair(ld, v, name, section_pair);
    return set_option(ld, name, k, v);
}

/* Where each option was set, across the files of one load (a file and its
 * overrides), so a relation broken between them blames the right line. */
#define FILES_MAX 64 /* a file and its overrides */
typedef struct marks {
    char *files[FILES_MAX]; /* the files read, in order */
    int nfiles;
    unsigned char file_of[TKM_OPTION_SLOTS]; /* index into files */
    yaml_mark_t at[TKM_OPTION_SLOTS];
    unsigned char set[TKM_OPTION_SLOTS];
} marks;

static void marks_free(marks *m)
{
    for (int i = 0; m != NULL && i < m->nfiles; i++)
        free(m->files[i]);
    free(m);
}

/* One document: its keys into *opts, its marks into *m. */
static tkm_code load_one(yaml_parser_t *parser, const char *path,
                         tkm_options *opts, marks *m, char *errbuf,
                         size_t errlen)
{
    yaml_document_t doc;
    yaml_node_t *root;
    tkm_code rc;
    loader *ld;

    if (!yaml_parser_load(parser, &doc)) {
        tkm__fmt(errbuf, errlen, "%s:%zu:%zu: malformed YAML: %s%s%s", path,
                 parser->problem_mark.line + 1, parser->problem_mark.column + 1,
                 parser->problem ? parser->problem : "syntax error",
                 parser->context ? " " : "",
                 parser->context ? parser->context : "");
        return TKM_ECONFIG;
    }
    ld = calloc(1, sizeof(*ld));
    if (ld == NULL) {
        yaml_document_delete(&doc);
        tkm__fmt(errbuf, errlen, "%s: out of memory", path);
        return TKM_ENOMEM;
    }
    *ld = (loader){.path = path,
                   .doc = &doc,
                   .opts = opts,
                   .errbuf = errbuf,
                   .errlen = errlen};
    root = yaml_document_get_root_node(&doc);
    rc = root == NULL ? TKM_OK : each_pair(ld, root, "", top_pair);
    yaml_document_delete(&doc);
    if (rc == TKM_OK && m->nfiles < FILES_MAX &&
        (m->files[m->nfiles] = strdup(path)) != NULL) {
        for (size_t i = 0; i < TKM_OPTION_SLOTS; i++) {
            if (ld->marked[i]) {
                m->file_of[i] = (unsigned char)m->nfiles;
                m->at[i] = ld->marks[i];
                m->set[i] = 1;
            }
        }
        m->nfiles++;
    }
    free(ld);
    return rc;
}

/* The relations between options, once every file of a load is read. */
static tkm_code relations(const char *path, const tkm_options *opts,
                          const marks *m, char *errbuf, size_t errlen)
{
    char msg[TKM__ERR_MAX];
    int culprit;

    if (tkm__options_relations(opts, &culprit, msg, sizeof(msg)) == TKM_OK)
        return TKM_OK;
    /* Blame the line of the option a file set, when one did. */
    if (culprit >= 0 && m->set[culprit])
        tkm__fmt(errbuf, errlen, "%s:%zu:%zu: %s",
                 m->files[m->file_of[culprit]], m->at[culprit].line + 1,
                 m->at[culprit].column + 1, msg);
    else
        tkm__fmt(errbuf, errlen, "%s: %s", path, msg);
    return TKM_ECONFIG;
}

tkm_code tkm__config_load_string(const char *name, const char *text, size_t len,
                                 tkm_options *opts, char *errbuf, size_t errlen)
{
    yaml_parser_t parser;
    marks *m = calloc(1, sizeof(*m));
    tkm_code rc;

    if (m == NULL || !yaml_parser_initialize(&parser)) {
        free(m);
        tkm__fmt(errbuf, errlen, "%s: out of memory", name);
        return TKM_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    rc = load_one(&parser, name, opts, m, errbuf, errlen);
    yaml_parser_delete(&parser);
    if (rc == TKM_OK)
        rc = relations(name, opts, m, errbuf, errlen);
    marks_free(m);
    return rc;
}

/* One file (a regular file only: a FIFO or a device would hang). */
static tkm_code load_path(const char *path, tkm_options *opts, marks *m,
                          char *errbuf, size_t errlen)
{
    yaml_parser_t parser;
    FILE *fp;
    tkm_code rc;
    int fd = tkm__open_regular(path, O_RDONLY, errbuf, errlen);

    if (fd < 0)
        return errno == EINVAL ? TKM_ECONFIG : TKM_EIO;
    fp = fdopen(fd, "rb");
    if (fp == NULL) {
        close(fd);
        tkm__fmt(errbuf, errlen, "%s: cannot open: %s", path, strerror(errno));
        return TKM_EIO;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        tkm__fmt(errbuf, errlen, "%s: out of memory", path);
        return TKM_ENOMEM;
    }
    yaml_parser_set_input_file(&parser, fp);
    rc = load_one(&parser, path, opts, m, errbuf, errlen);
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

static int yaml_name(const struct dirent *e)
{
    size_t n = strlen(e->d_name);

    return e->d_name[0] != '.' &&
           ((n > 5 && strcmp(e->d_name + n - 5, ".yaml") == 0) ||
            (n > 4 && strcmp(e->d_name + n - 4, ".yml") == 0));
}

/* "/etc/tokenmgr/tokenmgr.yaml" -> "/etc/tokenmgr/tokenmgr.d". */
static void override_dir(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    size_t stem = dot != NULL && (slash == NULL || dot > slash)
                      ? (size_t)(dot - path)
                      : strlen(path);

    tkm__fmt(buf, len, "%.*s.d", (int)stem, path);
}

TKM_EXPORT tkm_code tkm_config_load_file(const char *path, tkm_options *opts,
                                         char *errbuf, size_t errlen)
{
    char dir[TKM_PATH_MAX], file[TKM_PATH_MAX];
    struct dirent **names = NULL;
    marks *m = calloc(1, sizeof(*m));
    tkm_code rc;
    int n;

    if (m == NULL) {
        tkm__fmt(errbuf, errlen, "%s: out of memory", path);
        return TKM_ENOMEM;
    }
    rc = load_path(path, opts, m, errbuf, errlen);
    /* Then its overrides, in name order: the *.yaml of tokenmgr.d beside
     * tokenmgr.yaml, which a package upgrade never touches. */
    override_dir(path, dir, sizeof(dir));
    n = rc == TKM_OK ? scandir(dir, &names, yaml_name, alphasort) : -1;
    for (int i = 0; i < n; i++) {
        if (rc == TKM_OK) {
            tkm__fmt(file, sizeof(file), "%s/%s", dir, names[i]->d_name);
            rc = load_path(file, opts, m, errbuf, errlen);
        }
        free(names[i]);
    }
    free(names);
    if (rc == TKM_OK && n >= FILES_MAX) {
        tkm__fmt(errbuf, errlen, "%s: more than %d override files", dir,
                 FILES_MAX - 1);
        rc = TKM_ECONFIG;
    }
    if (rc == TKM_OK)
        rc = relations(path, opts, m, errbuf, errlen);
    marks_free(m);
    return rc;
}
