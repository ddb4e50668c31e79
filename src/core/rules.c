/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Rule files (oomprotect.rules(5)), parsed with libinih.
 *
 *  - Every "[Rule]" header begins a new rule, so a file may hold several.
 *    Keys are case-sensitive, as in oomprotectd.conf. A match key may be
 *    given more than once (any of its values matches); an empty assignment
 *    empties its list, systemd's convention.
 *  - A rule is all or nothing: one bad key or value, and the whole rule is
 *    skipped with a warning naming file, line and key. A rule without any
 *    match key would match every process and is refused too.
 *  - Name= is optional; without it a rule is named after its file (the name
 *    without ".rules"), and the second and later unnamed rules of a file get
 *    "-2", "-3"... A name that is taken already skips the later rule.
 *  - Lines are filtered as config.c does: white space stripped (so there are
 *    no continuation lines), a line inih would read in pieces is skipped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <ini.h>

#include "fileio.h"
#include "ini-line.h"
#include "macro.h"
#include "parse.h"
#include "proc.h"
#include "rules.h"
#include "unit-protection.h"

#define RULES_SECTION "Rule"
#define RULES_FILE_MAX (1024 * 1024)
#define RULES_PATTERN_MAX 1024
#define RULES_GROUPS_MAX 65536
#define WHITESPACE " \t\n\r\f\v"
#define GLOB_CHARS "*?["

typedef struct ParseContext {
        RuleSet *set;
        const char *file;
        const char *text, *pos, *end;
        unsigned line;
        Rule *rule;        /* the rule being read, NULL outside one */
        bool rule_bad;     /* one of its keys was refused: it is dropped at its end */
        bool in_unknown;   /* inside a section other than [Rule] (warned about at its header) */
        unsigned unnamed;  /* unnamed rules met in this file */
        int warnings;
        int error;
} ParseContext;

/* ---- small helpers ---- */

static void rule_list_done(RuleList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->items[i]);
        free(l->items);
        *l = (RuleList) {};
}

static int rule_list_add(RuleList *l, const char *s) {
        char **a, *copy;

        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        a = realloc(l->items, (l->n + 1) * sizeof(char *));
        if (!a) {
                free(copy);
                return -ENOMEM;
        }
        a[l->n++] = copy;
        l->items = a;
        return 0;
}

static Rule *rule_free(Rule *r) {
        if (!r)
                return NULL;
        free(r->name);
        free(r->file);
        rule_list_done(&r->executables);
        rule_list_done(&r->comms);
        rule_list_done(&r->units);
        rule_list_done(&r->cgroups);
        free(r->users);
        free(r->groups);
        free(r);
        return NULL;
}

void rule_set_done(RuleSet *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n; i++)
                rule_free(s->rules[i]);
        free(s->rules);
        for (size_t i = 0; i < s->n_warnings; i++)
                free(s->warnings[i]);
        free(s->warnings);
        *s = (RuleSet) {};
}

static int rule_set_warn(RuleSet *s, const char *fmt, ...) _printf_(2, 3);
static int rule_set_warn(RuleSet *s, const char *fmt, ...) {
        char **a, *w;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&w, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        a = realloc(s->warnings, (s->n_warnings + 1) * sizeof(char *));
        if (!a) {
                free(w);
                return -ENOMEM;
        }
        a[s->n_warnings++] = w;
        s->warnings = a;
        return 0;
}

/* A warning of the file being parsed; a failure to record one is the parse's error. */
#define ctx_warn(ctx, ...)                                              \
        do {                                                            \
                if (rule_set_warn((ctx)->set, __VA_ARGS__) < 0)         \
                        (ctx)->error = -ENOMEM;                         \
                (ctx)->warnings++;                                      \
        } while (0)

static bool has_glob(const char *s) {
        return strpbrk(s, GLOB_CHARS) != NULL;
}

static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

static const char *rule_name_error(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > RULE_NAME_MAX)
                return "a name has 1 to 64 characters";
        if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@:-") != n)
                return "a name has only the characters A-Z a-z 0-9 _ . @ : -";
        return NULL;
}

/* ---- one parser per key; each returns NULL or the reason for a refusal, and leaves r untouched then ---- */

typedef const char *(*RuleKeyParser)(Rule *r, const char *v, int *ret_error);

static const char *parse_name(Rule *r, const char *v, int *ret_error) {
        const char *why = rule_name_error(v);
        char *copy;

        if (why)
                return why;
        copy = strdup(v);
        if (!copy) {
                *ret_error = -ENOMEM;
                return "out of memory";
        }
        free(r->name);
        r->name = copy;
        return NULL;
}

static const char *pattern_error(const char *v, bool absolute) {
        if (strlen(v) > RULES_PATTERN_MAX)
                return "longer than 1024 characters";
        if (has_control(v))
                return "contains a control character";
        if (absolute && v[0] != '/')
                return "not an absolute path (or a glob starting with /)";
        if (absolute && (strstr(v, "/../") || endswith(v, "/..") || strstr(v, "/./") || endswith(v, "/.") ||
                         strstr(v, "//")))
                return "not a normalized path (\"//\", \".\" or \"..\" component): the kernel's paths never are";
        return NULL;
}

static const char *list_add_checked(RuleList *l, const char *v, const char *why, int *ret_error) {
        if (why)
                return why;
        if (rule_list_add(l, v) < 0) {
                *ret_error = -ENOMEM;
                return "out of memory";
        }
        return NULL;
}

static const char *parse_executable(Rule *r, const char *v, int *ret_error) {
        if (isempty(v)) {
                rule_list_done(&r->executables);
                return NULL;
        }
        return list_add_checked(&r->executables, v, pattern_error(v, true), ret_error);
}

static const char *parse_comm(Rule *r, const char *v, int *ret_error) {
        const char *why = NULL;

        if (isempty(v)) {
                rule_list_done(&r->comms);
                return NULL;
        }
        if (!has_glob(v) && strlen(v) > 15)
                why = "longer than 15 characters: the kernel keeps at most 15 of a comm, so it can never match";
        else if (strchr(v, '/'))
                why = "a comm has no '/': for a path use Executable=";
        return list_add_checked(&r->comms, v, why ?: pattern_error(v, false), ret_error);
}

static const char *parse_unit(Rule *r, const char *v, int *ret_error) {
        const char *why = NULL, *dot;

        if (isempty(v)) {
                rule_list_done(&r->units);
                return NULL;
        }
        dot = strrchr(v, '.');
        if (strlen(v) > 255)
                why = "longer than 255 characters";
        else if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.\\@-*?[]!") != strlen(v))
                why = "a unit name has only the characters A-Z a-z 0-9 : _ . \\ @ - (and * ? [ ] for a glob)";
        else if (!dot || dot == v)
                why = "not a unit name (NAME.service, NAME.scope, NAME.slice, ...)";
        else if (!has_glob(dot) && !streq(dot, ".service") && !streq(dot, ".scope") && !streq(dot, ".slice") &&
                 !streq(dot, ".socket") && !streq(dot, ".mount") && !streq(dot, ".swap"))
                why = "a process can only be in a .service, .scope, .slice, .socket, .mount or .swap unit";
        return list_add_checked(&r->units, v, why, ret_error);
}

static const char *parse_cgroup(Rule *r, const char *v, int *ret_error) {
        if (isempty(v)) {
                rule_list_done(&r->cgroups);
                return NULL;
        }
        if (!streq(v, "/") && endswith(v, "/"))
                return "a cgroup path has no trailing '/'";
        return list_add_checked(&r->cgroups, v, pattern_error(v, true), ret_error);
}

/* A user or group: a number, or a name looked up once, now (Resolve configuration once, STYLE.md). */
static const char *parse_id(const char *v, bool group, uint32_t *ret) {
        uint64_t n;

        if (parse_u64_base0(v, &n) >= 0 && v[0] >= '1' && v[0] <= '9' && n < UINT32_MAX) {
                *ret = (uint32_t) n;
                return NULL;
        }
        if (streq(v, "0")) {
                *ret = 0;
                return NULL;
        }
        if (strlen(v) > 32 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-$") !=
                                      strlen(v))
                return group ? "not a group name or number" : "not a user name or number";
        if (group) {
                struct group *g = getgrnam(v);
                if (!g)
                        return "no such group on this system";
                *ret = g->gr_gid;
        } else {
                struct passwd *p = getpwnam(v);
                if (!p)
                        return "no such user on this system";
                *ret = p->pw_uid;
        }
        return NULL;
}

static const char *id_add(uint32_t **a, size_t *n, const char *v, bool group, int *ret_error) {
        const char *why;
        uint32_t id, *b;

        if (isempty(v)) {
                free(*a);
                *a = NULL;
                *n = 0;
                return NULL;
        }
        why = parse_id(v, group, &id);
        if (why)
                return why;
        b = realloc(*a, (*n + 1) * sizeof(uint32_t));
        if (!b) {
                *ret_error = -ENOMEM;
                return "out of memory";
        }
        b[(*n)++] = id;
        *a = b;
        return NULL;
}

static const char *parse_user(Rule *r, const char *v, int *ret_error) {
        _Static_assert(sizeof(uid_t) == sizeof(uint32_t), "uid_t is 32 bits");
        return id_add((uint32_t **) &r->users, &r->n_users, v, false, ret_error);
}

static const char *parse_group(Rule *r, const char *v, int *ret_error) {
        _Static_assert(sizeof(gid_t) == sizeof(uint32_t), "gid_t is 32 bits");
        return id_add((uint32_t **) &r->groups, &r->n_groups, v, true, ret_error);
}

static const char *parse_memory(const char *v, uint64_t *ret) {
        uint64_t bytes;
        int r;

        r = parse_size(v, physical_memory(), &bytes);
        if (r == -EOPNOTSUPP)
                return "a percentage, but the machine's RAM size is unknown";
        if (r == -ERANGE)
                return strchr(v, '%') ? "percentage out of range 0..100" : "too large";
        if (r < 0)
                return "not a size (bytes, with an optional K, M, G or T suffix, or N% of RAM)";
        if (bytes == UINT64_MAX)
                return "infinity would protect more than the machine has; give a size";
        *ret = bytes;
        return NULL;
}

static const char *parse_memory_min(Rule *r, const char *v, int *ret_error) {
        const char *why = parse_memory(v, &r->options.memory_min);

        if (!why)
                r->options.has_memory_min = true;
        return why;
}

static const char *parse_memory_low(Rule *r, const char *v, int *ret_error) {
        const char *why = parse_memory(v, &r->options.memory_low);

        if (!why)
                r->options.has_memory_low = true;
        return why;
}

static const char *parse_adj(Rule *r, const char *v, int *ret_error) {
        int adj;

        if (parse_int_range(v, -1000, 1000, &adj) < 0)
                return "not an integer in -1000..1000";
        r->options.adj = adj;
        r->options.has_adj = true;
        return NULL;
}

static const char *parse_bool_field(bool *field, const char *v) {
        int b = parse_boolean(v);

        if (b < 0)
                return "not a boolean (yes, no, true, false, on, off, 1, 0)";
        *field = b;
        return NULL;
}

static const char *parse_in_place(Rule *r, const char *v, int *ret_error) {
        const char *why = parse_bool_field(&r->options.in_place, v);

        if (!why)
                r->options.has_in_place = true;
        return why;
}

static const char *parse_descendants(Rule *r, const char *v, int *ret_error) {
        return parse_bool_field(&r->options.descendants, v);
}

typedef struct RuleKey {
        const char *name;
        RuleKeyParser parse;
        bool empty_ok; /* "" empties the key's list */
} RuleKey;

static const RuleKey rule_keys[] = {
        { "Name",           parse_name,        false },
        { "Executable",     parse_executable,  true  },
        { "Comm",           parse_comm,        true  },
        { "User",           parse_user,        true  },
        { "Group",          parse_group,       true  },
        { "Unit",           parse_unit,        true  },
        { "Cgroup",         parse_cgroup,      true  },
        { "MemoryMin",      parse_memory_min,  false },
        { "MemoryLow",      parse_memory_low,  false },
        { "OOMScoreAdjust", parse_adj,         false },
        { "InPlace",        parse_in_place,    false },
        { "Descendants",    parse_descendants, false },
};

/* ---- rules as a whole ---- */

const Rule *rules_find(const RuleSet *s, const char *name) {
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->rules[i]->name, name))
                        return s->rules[i];
        return NULL;
}

static bool rule_has_match(const Rule *r) {
        return r->executables.n || r->comms.n || r->units.n || r->cgroups.n || r->n_users || r->n_groups;
}

bool rule_uses_cgroup(const Rule *r) {
        return r->units.n || r->cgroups.n;
}

bool rule_is_unit_wide(const Rule *r) {
        if (r->units.n == 0 || r->executables.n || r->comms.n || r->cgroups.n || r->n_users || r->n_groups ||
            (r->options.has_in_place && !r->options.in_place))
                return false;
        for (size_t i = 0; i < r->units.n; i++)
                if (has_glob(r->units.items[i]) || !unit_name_is_protectable(r->units.items[i]))
                        return false;
        return true;
}

bool rule_names_unit(const Rule *r, const char *unit) {
        for (size_t i = 0; unit && i < r->units.n; i++)
                if (streq(r->units.items[i], unit))
                        return true;
        return false;
}

const char *rule_unit_of_cgroup(const Rule *r, const char *cgroup) {
        if (!cgroup || !rule_is_unit_wide(r))
                return NULL;
        for (const char *c = cgroup;;) {
                size_t len;

                c += strspn(c, "/");
                len = strcspn(c, "/");
                if (len == 0)
                        return NULL;
                for (size_t i = 0; i < r->units.n; i++)
                        if (strlen(r->units.items[i]) == len && strneq(r->units.items[i], c, len))
                                return r->units.items[i];
                /* Only slices lead to a unit of PID 1's: anything else is a unit's inside (a user manager's units). */
                if (len < strlen(".slice") || !strneq(c + len - strlen(".slice"), ".slice", strlen(".slice")))
                        return NULL;
                c += len;
        }
}

static char *file_stem(const char *file) {
        const char *base = strrchr(file, '/');
        size_t n;

        base = base ? base + 1 : file;
        n = strlen(base);
        if (endswith(base, ".rules"))
                n -= strlen(".rules");
        return strndup(base, n);
}

/* The default name of an unnamed rule: the file's, then "-2", "-3"... */
static int rule_default_name(ParseContext *ctx, Rule *r) {
        _cleanup_free_ char *stem = file_stem(ctx->file);

        if (!stem)
                return -ENOMEM;
        ctx->unnamed++;
        if (ctx->unnamed == 1) {
                r->name = TAKE_PTR(stem);
                return 0;
        }
        return asprintf(&r->name, "%s-%u", stem, ctx->unnamed) < 0 ? -ENOMEM : 0;
}

static int rule_set_add(RuleSet *s, Rule *r) {
        Rule **a = realloc(s->rules, (s->n + 1) * sizeof(Rule *));

        if (!a)
                return -ENOMEM;
        a[s->n++] = r;
        s->rules = a;
        return 0;
}

/* The end of a rule (the next header or the end of the file): keep it or drop it with a reason. */
static void rule_finish(ParseContext *ctx) {
        Rule *r = TAKE_PTR(ctx->rule);
        const char *why = NULL;

        if (!r)
                return;
        if (!r->name && rule_default_name(ctx, r) < 0)
                ctx->error = -ENOMEM;
        if (ctx->error < 0 || ctx->rule_bad) {
                rule_free(r);
                return;
        }
        if (rule_name_error(r->name))
                why = "its default name (after the file) is not a valid name: give it a Name=";
        else if (!rule_has_match(r))
                why = "it has no match key (Executable=, Comm=, User=, Group=, Unit= or Cgroup=) and would match "
                      "every process";
        else if (rules_find(ctx->set, r->name))
                why = "a rule of that name exists already (names are unique across all rule files)";
        if (why) {
                ctx_warn(ctx, "%s:%u: Rule \"%s\" skipped: %s.", ctx->file, r->line, r->name, why);
                rule_free(r);
                return;
        }
        if (rule_set_add(ctx->set, r) < 0) {
                ctx->error = -ENOMEM;
                rule_free(r);
        }
}

static void rule_begin(ParseContext *ctx) {
        rule_finish(ctx);
        ctx->rule_bad = false;
        ctx->rule = calloc(1, sizeof(Rule));
        if (!ctx->rule) {
                ctx->error = -ENOMEM;
                return;
        }
        ctx->rule->line = ctx->line;
        ctx->rule->file = strdup(ctx->file);
        if (!ctx->rule->file)
                ctx->error = -ENOMEM;
}

/* A header inih accepted: [Rule] begins a rule, another section is a warning and its keys are ignored. */
static void rules_check_section(ParseContext *ctx, const char *s) {
        size_t len = strcspn(s + 1, "]");

        if (len == strlen(RULES_SECTION) && strneq(s + 1, RULES_SECTION, len)) {
                ctx->in_unknown = false;
                rule_begin(ctx);
                return;
        }
        rule_finish(ctx);
        ctx->in_unknown = true;
        ctx_warn(ctx, "%s:%u: Unknown section [%.*s], expected [" RULES_SECTION "]; ignoring its keys.", ctx->file,
                 ctx->line, (int) len, s + 1);
}

static void rule_mark_bad(ParseContext *ctx, const char *what) {
        if (ctx->rule && !ctx->rule_bad)
                ctx_warn(ctx, "%s:%u: The rule of line %u is skipped whole (%s).", ctx->file, ctx->line,
                         ctx->rule->line, what);
        ctx->rule_bad = true;
}

/* Trims a line and decides whether inih may see it: the text, or NULL after a warning. */
static char *rules_filter_line(ParseContext *ctx, char *line, size_t n, size_t max) {
        IniLineProblem problem;
        char *s = ini_line_clean(line, n, max, ctx->line == 1, &problem);

        if (problem == INI_LINE_NUL)
                ctx_warn(ctx, "%s:%u: Line contains a NUL byte.", ctx->file, ctx->line);
        else if (problem == INI_LINE_TOO_LONG)
                ctx_warn(ctx, "%s:%u: Line longer than %zu characters.", ctx->file, ctx->line, max - 2);
        else if (problem == INI_LINE_SYNTAX)
                ctx_warn(ctx, "%s:%u: Syntax error, expected [" RULES_SECTION "], Key=Value or a comment: %s",
                         ctx->file, ctx->line, line + strspn(line, WHITESPACE));
        if (!s) {
                rule_mark_bad(ctx, "a bad line");
                return NULL;
        }
        if (s[0] == '[')
                rules_check_section(ctx, s);
        return s;
}

/* inih's reader over the text: one line at a time, counted. */
static char *rules_read_line(char *str, int num, void *userdata) {
        ParseContext *ctx = userdata;
        _cleanup_free_ char *line = NULL;
        const char *nl;
        size_t n;
        char *s;

        if (ctx->error < 0 || num < 2 || ctx->pos >= ctx->end)
                return NULL;
        nl = memchr(ctx->pos, '\n', (size_t) (ctx->end - ctx->pos));
        n = nl ? (size_t) (nl - ctx->pos) : (size_t) (ctx->end - ctx->pos);
        line = malloc(n + 1);
        if (!line) {
                ctx->error = -ENOMEM;
                return NULL;
        }
        memcpy(line, ctx->pos, n);
        line[n] = '\0';
        ctx->pos += n + (nl ? 1 : 0);
        ctx->line++;
        s = rules_filter_line(ctx, line, n, (size_t) num);
        snprintf(str, (size_t) num, "%s\n", s ?: ""); /* a skipped line becomes an empty one */
        return str;
}

static const RuleKey *rule_key_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(rule_keys); i++)
                if (streq(rule_keys[i].name, name))
                        return &rule_keys[i];
        return NULL;
}

static void rule_set_key(ParseContext *ctx, const char *name, const char *value) {
        const RuleKey *k = rule_key_find(name);
        const char *why;
        int error = 0;

        if (!k) {
                ctx_warn(ctx, "%s:%u: Unknown key \"%s\" in [" RULES_SECTION "].", ctx->file, ctx->line, name);
                rule_mark_bad(ctx, "an unknown key");
                return;
        }
        if (ctx->rule_bad)
                return; /* dropped anyway: the first problem was reported */
        why = isempty(value) && !k->empty_ok ? "empty value" : k->parse(ctx->rule, value, &error);
        if (error < 0) {
                ctx->error = error;
                return;
        }
        if (why) {
                ctx_warn(ctx, "%s:%u: Invalid %s=%s: %s.", ctx->file, ctx->line, name, value, why);
                rule_mark_bad(ctx, "a bad value");
        }
}

static int rules_handle_pair(void *userdata, const char *section, const char *name, const char *value) {
        ParseContext *ctx = userdata;

        if (ctx->error < 0 || ctx->in_unknown)
                return 1;
        if (!ctx->rule)
                ctx_warn(ctx, "%s:%u: Key \"%s\" outside of a section, expected [" RULES_SECTION "] first.",
                         ctx->file, ctx->line, name);
        else
                rule_set_key(ctx, name, value ?: "");
        return 1; /* problems are counted here, never by inih */
}

int rules_parse_string(RuleSet *s, const char *text, size_t len, const char *file) {
        ParseContext ctx = { .set = s, .file = file ?: "<rules>", .text = text, .pos = text, .end = text + len };
        int r;

        r = ini_parse_stream(rules_read_line, &ctx, rules_handle_pair, &ctx);
        rule_finish(&ctx);
        if (ctx.error < 0)
                return ctx.error;
        if (r < 0)
                return -ENOMEM;
        if (r > 0) /* not expected: the filter hides every line inih would refuse */
                ctx_warn(&ctx, "%s:%d: Syntax error.", ctx.file, r);
        return ctx.error < 0 ? ctx.error : ctx.warnings;
}

/* ---- loading the directories ---- */

/* A rule is root's word: the file and its directory must be root's alone. */
static const char *trust_error(const struct stat *st) {
        if (st->st_uid != 0)
                return "not owned by root";
        if (st->st_mode & (S_IWGRP | S_IWOTH))
                return "writable by group or others";
        return NULL;
}

static int rules_load_file(RuleSet *s, int dirfd, const char *dir, const char *name) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *why;
        struct stat st;
        size_t len;
        int r;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        /* A link to /dev/null masks a rule of that name in a later directory, as in systemd. */
        if (fstatat(dirfd, name, &st, 0) >= 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))
                return 0;
        fd = open_regular_file_at(dirfd, name, 0);
        if (fd == -ENOENT)
                return 0; /* removed since the directory was listed */
        if (fd == -ELOOP || fd == -EISDIR || fd == -EBADFD)
                return rule_set_warn(s, "%s: Not a regular file (or a symbolic link), refused.", path) < 0 ? -ENOMEM
                                                                                                           : 1;
        if (fd < 0)
                return rule_set_warn(s, "%s: Cannot open: %s; its rules are not used.", path, strerror(-fd)) < 0
                               ? -ENOMEM : 1;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        why = trust_error(&st);
        if (why)
                return rule_set_warn(s, "%s: Refused, %s (owner uid %u, mode %04o): a rule file must be root's "
                                        "alone.", path, why, (unsigned) st.st_uid,
                                     (unsigned) (st.st_mode & 07777)) < 0 ? -ENOMEM : 1;
        r = read_full_fd(fd, RULES_FILE_MAX, &text, &len);
        if (r == -EFBIG)
                return rule_set_warn(s, "%s: Larger than 1 MiB, refused.", path) < 0 ? -ENOMEM : 1;
        if (r < 0)
                return rule_set_warn(s, "%s: Cannot read: %s; its rules are not used.", path, strerror(-r)) < 0
                               ? -ENOMEM : 1;
        return rules_parse_string(s, text, len, path);
}

static int rules_filter(const struct dirent *de) {
        return de->d_name[0] != '.' && endswith(de->d_name, ".rules");
}

typedef struct DirList {
        const char *dir;
        int fd;
        struct dirent **entries;
        int n;
} DirList;

static void dir_list_done(DirList *l) {
        for (int i = 0; i < l->n; i++)
                free(l->entries[i]);
        free(l->entries);
        safe_close(l->fd);
        *l = (DirList) { .fd = -EBADF };
}

static bool dir_list_has(const DirList *l, const char *name) {
        for (int i = 0; i < l->n; i++)
                if (streq(l->entries[i]->d_name, name))
                        return true;
        return false;
}

/* Lists dir's *.rules; a missing directory is an empty one, an untrusted one a warning (and empty). */
static int dir_list_open(RuleSet *s, const char *dir, DirList *ret) {
        const char *why;
        struct stat st;
        int fd, r;

        *ret = (DirList) { .dir = dir, .fd = -EBADF };
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT || errno == ENOTDIR ? 0 : negative_errno();
        if (fstat(fd, &st) < 0) {
                safe_close(fd);
                return negative_errno();
        }
        why = trust_error(&st);
        if (why) {
                safe_close(fd);
                r = rule_set_warn(s, "%s: Directory refused, %s (owner uid %u, mode %04o): no rule in it is used.",
                                  dir, why, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
                return r < 0 ? r : 1;
        }
        ret->fd = fd;
        ret->n = scandirat(fd, ".", &ret->entries, rules_filter, alphasort);
        if (ret->n < 0) {
                ret->n = 0;
                return negative_errno();
        }
        return 0;
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The union of the names, each once, sorted: the order the files are read in. Borrowed from lists. */
static int all_names(const DirList *lists, size_t n_dirs, const char ***ret, size_t *ret_n) {
        const char **names = NULL;
        size_t n = 0;

        for (size_t d = 0; d < n_dirs; d++)
                for (int i = 0; i < lists[d].n; i++) {
                        const char *name = lists[d].entries[i]->d_name, **a;
                        bool seen = false;

                        for (size_t j = 0; j < n && !seen; j++)
                                seen = streq(names[j], name);
                        if (seen)
                                continue;
                        a = realloc(names, (n + 1) * sizeof(char *));
                        if (!a) {
                                free(names);
                                return -ENOMEM;
                        }
                        names = a;
                        names[n++] = name;
                }
        if (n > 0)
                qsort(names, n, sizeof(char *), strcmp_ptr);
        *ret = names;
        *ret_n = n;
        return 0;
}

static int rules_load_lists(RuleSet *s, const DirList *lists, size_t n_dirs) {
        _cleanup_free_ const char **names = NULL;
        int r, warnings = 0;
        size_t n;

        r = all_names(lists, n_dirs, &names, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                for (size_t d = 0; d < n_dirs; d++) {
                        if (!dir_list_has(&lists[d], names[i]))
                                continue;
                        r = rules_load_file(s, lists[d].fd, lists[d].dir, names[i]);
                        if (r < 0)
                                return r;
                        warnings += r;
                        break; /* the first directory that has it masks the others */
                }
        return warnings;
}

int rules_load(RuleSet *s, char *const *dirs, size_t n_dirs) {
        DirList *lists = calloc(n_dirs ? n_dirs : 1, sizeof(DirList));
        int r = 0, warnings = 0;

        if (!lists)
                return -ENOMEM;
        for (size_t d = 0; d < n_dirs; d++)
                lists[d].fd = -EBADF;
        for (size_t d = 0; d < n_dirs && r >= 0; d++) {
                r = dir_list_open(s, dirs[d], &lists[d]);
                if (r > 0)
                        warnings++;
        }
        if (r >= 0)
                r = rules_load_lists(s, lists, n_dirs);
        for (size_t d = 0; d < n_dirs; d++)
                dir_list_done(&lists[d]);
        free(lists);
        return r < 0 ? r : warnings + r;
}

/* ---- the matcher ---- */

static bool pattern_match(const char *pattern, const char *s, bool path) {
        return fnmatch(pattern, s, path ? FNM_PATHNAME : 0) == 0;
}

static const char *list_match(const RuleList *l, const char *s, bool path) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                if (pattern_match(l->items[i], s, path))
                        return l->items[i];
        return NULL;
}

/* Unit=: a unit is a component of the cgroup path ("/system.slice/foo.service/x" is in foo.service). */
static const char *unit_match(const RuleList *l, const char *cgroup, char **ret_unit) {
        if (!cgroup)
                return NULL;
        for (const char *c = cgroup; *c;) {
                size_t len;

                c += strspn(c, "/");
                len = strcspn(c, "/");
                if (len == 0)
                        break;
                for (size_t i = 0; i < l->n; i++) {
                        _cleanup_free_ char *component = strndup(c, len);
                        if (component && pattern_match(l->items[i], component, false)) {
                                *ret_unit = TAKE_PTR(component);
                                return l->items[i];
                        }
                }
                c += len;
        }
        return NULL;
}

/* Cgroup=: the process's cgroup or one of its ancestors. */
static const char *cgroup_match(const RuleList *l, const char *cgroup) {
        _cleanup_free_ char *prefix = NULL;
        size_t n;

        if (!cgroup)
                return NULL;
        prefix = strdup(cgroup);
        if (!prefix)
                return NULL;
        n = strlen(prefix);
        for (;;) {
                const char *m = list_match(l, prefix, true);
                if (m)
                        return m;
                while (n > 1 && prefix[n - 1] != '/')
                        n--;
                if (n <= 1) {
                        if (streq(prefix, "/"))
                                return NULL;
                        strcpy(prefix, "/");
                        continue;
                }
                prefix[--n] = '\0';
        }
}

static bool id_in(const uint32_t *a, size_t n, uint32_t id) {
        for (size_t i = 0; i < n; i++)
                if (a[i] == id)
                        return true;
        return false;
}

static bool group_match(const Rule *r, const RuleProcess *p, gid_t *ret_gid) {
        for (size_t i = 0; i < r->n_groups; i++) {
                if (r->groups[i] == p->gid || id_in(p->groups, p->n_groups, r->groups[i])) {
                        *ret_gid = r->groups[i];
                        return true;
                }
        }
        return false;
}

/* Appends one clause to *why ("Executable=/usr/bin/foo matched /usr/bin/foo"); memory failures only lose text. */
static void why_add(char **why, const char *fmt, ...) _printf_(2, 3);
static void why_add(char **why, const char *fmt, ...) {
        _cleanup_free_ char *clause = NULL;
        char *joined;
        va_list ap;
        int r;

        if (!why)
                return;
        va_start(ap, fmt);
        r = vasprintf(&clause, fmt, ap);
        va_end(ap);
        if (r < 0)
                return;
        if (asprintf(&joined, "%s%s%s", strempty(*why), *why ? ", " : "", clause) < 0)
                return;
        free(*why);
        *why = joined;
}

static bool rule_fail(char **why, const char *fmt, ...) _printf_(2, 3);
static bool rule_fail(char **why, const char *fmt, ...) {
        va_list ap;

        if (why) {
                free(*why);
                *why = NULL;
                va_start(ap, fmt);
                if (vasprintf(why, fmt, ap) < 0)
                        *why = NULL;
                va_end(ap);
        }
        return false;
}

static bool rule_matches_names(const Rule *r, const RuleProcess *p, char **why) {
        const char *m;

        if (r->executables.n) {
                m = list_match(&r->executables, p->exe, true);
                if (!m)
                        return rule_fail(why, "its executable %s matches no Executable= of rule %s", strna(p->exe),
                                         r->name);
                why_add(why, "Executable=%s matched %s", m, p->exe);
        }
        if (r->comms.n) {
                m = list_match(&r->comms, p->comm, false);
                if (!m)
                        return rule_fail(why, "its comm %s matches no Comm= of rule %s", p->comm, r->name);
                why_add(why, "Comm=%s matched %s", m, p->comm);
        }
        return true;
}

static bool rule_matches_ids(const Rule *r, const RuleProcess *p, char **why) {
        gid_t gid;

        if (r->n_users) {
                if (!id_in(r->users, r->n_users, p->uid))
                        return rule_fail(why, "its uid %u is no User= of rule %s", (unsigned) p->uid, r->name);
                why_add(why, "User= matched uid %u", (unsigned) p->uid);
        }
        if (r->n_groups) {
                if (!group_match(r, p, &gid))
                        return rule_fail(why, "neither its gid %u nor a supplementary group is a Group= of rule %s",
                                         (unsigned) p->gid, r->name);
                why_add(why, "Group= matched gid %u", (unsigned) gid);
        }
        return true;
}

static bool rule_matches_cgroup(const Rule *r, const RuleProcess *p, char **why) {
        _cleanup_free_ char *unit = NULL;
        const char *m;

        if (r->units.n) {
                m = unit_match(&r->units, p->cgroup, &unit);
                if (!m)
                        return rule_fail(why, "its cgroup %s is in no Unit= of rule %s", strna(p->cgroup), r->name);
                why_add(why, "Unit=%s matched %s", m, unit);
        }
        if (r->cgroups.n) {
                m = cgroup_match(&r->cgroups, p->cgroup);
                if (!m)
                        return rule_fail(why, "its cgroup %s is below no Cgroup= of rule %s", strna(p->cgroup),
                                         r->name);
                why_add(why, "Cgroup=%s matched %s", m, p->cgroup);
        }
        return true;
}

bool rule_matches(const Rule *r, const RuleProcess *p, char **ret_why) {
        char *why = NULL;
        bool ok;

        if (p->kernel_thread) {
                if (ret_why)
                        *ret_why = strdup("a kernel thread, which no rule protects");
                return false;
        }
        ok = rule_matches_names(r, p, ret_why ? &why : NULL) && rule_matches_ids(r, p, ret_why ? &why : NULL) &&
             rule_matches_cgroup(r, p, ret_why ? &why : NULL);
        if (ret_why)
                *ret_why = why;
        else
                free(why);
        return ok;
}

const Rule *rules_match(const RuleSet *s, const RuleProcess *p) {
        for (size_t i = 0; i < s->n; i++)
                if (rule_matches(s->rules[i], p, NULL))
                        return s->rules[i];
        return NULL;
}

const char *rules_source_name(const char *source) {
        if (!source || !strneq(source, RULE_SOURCE_PREFIX, strlen(RULE_SOURCE_PREFIX)))
                return NULL;
        return source + strlen(RULE_SOURCE_PREFIX);
}

/* ---- what the matcher needs of a process ---- */

void rule_process_done(RuleProcess *p) {
        free(p->exe);
        free(p->groups);
        free(p->cgroup);
        *p = (RuleProcess) {};
}

static int parse_gid_list(const char *s, gid_t **ret, size_t *ret_n) {
        gid_t *a = NULL;
        size_t n = 0;

        for (;;) {
                uint64_t v;
                char *end;
                gid_t *b;

                s += strspn(s, " \t");
                if (*s == '\0' || *s == '\n')
                        break;
                if (*s < '0' || *s > '9')
                        goto bad;
                errno = 0;
                v = strtoull(s, &end, 10);
                if (errno != 0 || v >= UINT32_MAX || n >= RULES_GROUPS_MAX)
                        goto bad;
                b = realloc(a, (n + 1) * sizeof(gid_t));
                if (!b) {
                        free(a);
                        return -ENOMEM;
                }
                a = b;
                a[n++] = (gid_t) v;
                s = end;
        }
        *ret = a;
        *ret_n = n;
        return 0;
bad:
        free(a);
        return -EINVAL;
}

static const char *status_line(const char *text, const char *key) {
        size_t k = strlen(key);

        for (const char *l = text; l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strneq(l, key, k))
                        return l + k;
        return NULL;
}

int rules_parse_status_gids(const char *text, gid_t *ret_gid, gid_t **ret_groups, size_t *ret_n) {
        const char *g = status_line(text, "Gid:"), *groups = status_line(text, "Groups:");
        gid_t *gids = NULL, *sup = NULL;
        size_t n = 0, n_sup = 0;
        int r;

        if (!g)
                return -ENODATA;
        r = parse_gid_list(g, &gids, &n);
        if (r < 0)
                return r;
        if (n != 4) {
                free(gids);
                return -EINVAL;
        }
        if (groups) {
                r = parse_gid_list(groups, &sup, &n_sup);
                if (r < 0) {
                        free(gids);
                        return r;
                }
        }
        *ret_gid = gids[0];
        free(gids);
        *ret_groups = sup;
        *ret_n = n_sup;
        return 0;
}

static int read_exe(int procfd, pid_t pid, char **ret) {
        char name[32], buf[PATH_MAX];
        ssize_t n;

        snprintf(name, sizeof(name), "%d/exe", (int) pid);
        n = readlinkat(procfd, name, buf, sizeof(buf) - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int rule_process_read(int procfd, pid_t pid, RuleProcess *ret) {
        _cleanup_free_ char *status = NULL;
        RuleProcess p = { .pid = pid };
        ProcStat st;
        char name[32];
        int r;

        snprintf(name, sizeof(name), "%d/stat", (int) pid);
        r = read_full_file_at(procfd, name, 4096, &status, NULL);
        if (r == -ENOENT)
                return -ESRCH;
        if (r < 0)
                return r;
        r = proc_parse_stat(status, &st);
        if (r < 0)
                return r;
        memcpy(p.comm, st.comm, sizeof(p.comm));
        p.kernel_thread = st.flags & PF_KTHREAD_FLAG;
        free(status);
        status = NULL;
        snprintf(name, sizeof(name), "%d/status", (int) pid);
        r = read_full_file_at(procfd, name, 65536, &status, NULL);
        if (r == -ENOENT)
                return -ESRCH;
        if (r >= 0)
                r = proc_parse_status_uid(status, &p.uid);
        if (r >= 0)
                r = rules_parse_status_gids(status, &p.gid, &p.groups, &p.n_groups);
        if (r < 0) {
                rule_process_done(&p);
                return r;
        }
        /* A kernel thread has no exe; a process that exited in between has none either. */
        if (!(st.flags & PF_KTHREAD_FLAG) && read_exe(procfd, pid, &p.exe) == -ENOMEM) {
                rule_process_done(&p);
                return -ENOMEM;
        }
        if (proc_read_cgroup(procfd, pid, &p.cgroup) == -ENOMEM) {
                rule_process_done(&p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

int rules_load_string(RuleSet *s, const char *dirs) {
        _cleanup_free_ char *copy = strdup(strempty(dirs));
        char *list[RULES_DIRECTORIES_MAX], *save = NULL;
        size_t n = 0;

        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, WHITESPACE, &save); w; w = strtok_r(NULL, WHITESPACE, &save)) {
                if (n == RULES_DIRECTORIES_MAX) {
                        if (rule_set_warn(s, "RuleDirectories=: more than %d directories, the rest are not read.",
                                          RULES_DIRECTORIES_MAX) < 0)
                                return -ENOMEM;
                        break;
                }
                list[n++] = w;
        }
        return rules_load(s, list, n);
}
