/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's configuration: /etc/oomprotect/oomprotectd.conf and then
 * every *.conf of oomprotectd.conf.d/ in lexical order, all keys in one
 * [Manager] section (DESIGN.md section 3). The syntax is libinih's.
 *
 * Rules, in the spirit of systemd's configuration files:
 *
 *  - config_set() is the one place a key is validated. A bad value, an
 *    unknown key, a key outside [Manager], an unknown section or a line that
 *    is not INI is a warning naming file, line (and key), and the previous
 *    value is kept. config_load() counts those warnings; only I/O and memory
 *    errors are fatal, and then the caller's Config is left untouched.
 *  - Keys, section names and enum values are case-sensitive, as systemd's.
 *  - An empty value resets a string key to its built-in default, systemd's
 *    convention for an empty assignment: "Slice=", "StateDirectory=",
 *    "CompatDirectory=" and "CgroupRoot=" (whose default is "discover").
 *    "AllowGroup=" is the one exception the design names: empty means
 *    nobody but root (stored as NULL). For a key holding a number, size,
 *    boolean or enum an empty value is rejected like any other bad value: a
 *    forgotten value there is more likely a slip than a wish for the default.
 *  - MemoryMinBudget is kept as written ("50%", "4G", "infinity") after
 *    validation, so that config_budget_bytes() resolves a percentage against
 *    the RAM of the moment; "infinity" and anything resolving to 0 mean no
 *    budget. DefaultMemoryMin/Low percentages are resolved when read.
 *  - Leading white space is stripped from every line, so indented keys are
 *    keys; inih's Python-style continuation lines are therefore not
 *    supported (such a line is a syntax error or a key of its own).
 *  - inih reads lines of at most ini_max_line - 3 characters (197 with
 *    Debian's build); a longer line is a warning and is skipped whole
 *    rather than parsed in truncated pieces.
 *  - Drop-ins: hidden files (".*") and names not ending in ".conf" are
 *    ignored, a missing directory is fine, a non-regular *.conf is a warning.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ini.h>

#include "config.h"
#include "fileio.h"
#include "ini-line.h"
#include "log.h"
#include "macro.h"
#include "oomprotect/protocol.h"
#include "parse.h"

#define CONFIG_SECTION "Manager"
#define CONFIG_MEMORY_MIN_BUDGET_DEFAULT "50%"
#define CONFIG_MAX_PROTECTED_DEFAULT 10000
#define CONFIG_MAX_PROTECTED_MAX 1000000
#define CONFIG_MAX_PROTECTED_PER_USER_DEFAULT 100
#define CONFIG_MEMORY_MIN_BUDGET_PER_USER_DEFAULT "10%"
#define CONFIG_RULE_DIRECTORIES_DEFAULT "/etc/oomprotect/rules.d /usr/lib/oomprotect/rules.d"
#define CONFIG_MAX_PROTECTED_MEMORY_DEFAULT "50%"
#define CONFIG_UNIT_NAME_MAX 255   /* systemd's UNIT_NAME_MAX without the NUL */
#define CONFIG_GROUP_NAME_MAX 32
#define WHITESPACE " \t\n\r\f\v"

typedef int (*ConfigParser)(Config *c, const char *value, const char **ret_reason);

typedef struct ConfigKey {
        const char *name;
        ConfigParser parse;
        bool empty_ok; /* the parser gives "" a meaning; otherwise "" is rejected before it */
} ConfigKey;

typedef struct LoadContext {
        Config *config;
        const char *file;
        FILE *f;
        unsigned line;
        char *buf;
        size_t bufsize;
        int warnings;
        int error;
} LoadContext;

static const char *const backend_type_table[_BACKEND_TYPE_MAX] = {
        [BACKEND_AUTO] = "auto",
        [BACKEND_SYSTEMD] = "systemd",
        [BACKEND_CGROUPFS] = "cgroupfs",
        [BACKEND_ADJ_ONLY] = "adj-only",
};

static const char *const managed_oom_preference_table[_MANAGED_OOM_PREFERENCE_MAX] = {
        [MANAGED_OOM_PREFERENCE_NONE] = "none",
        [MANAGED_OOM_PREFERENCE_AVOID] = "avoid",
        [MANAGED_OOM_PREFERENCE_OMIT] = "omit",
};

static int string_table_lookup(const char *const *table, size_t n, const char *s) {
        if (!s)
                return (int) n;
        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return (int) n;
}

const char *backend_type_to_string(BackendType t) {
        return (unsigned) t < _BACKEND_TYPE_MAX ? backend_type_table[t] : NULL;
}

BackendType backend_type_from_string(const char *s) {
        return (BackendType) string_table_lookup(backend_type_table, _BACKEND_TYPE_MAX, s);
}

const char *managed_oom_preference_to_string(ManagedOOMPreference p) {
        return (unsigned) p < _MANAGED_OOM_PREFERENCE_MAX ? managed_oom_preference_table[p] : NULL;
}

ManagedOOMPreference managed_oom_preference_from_string(const char *s) {
        return (ManagedOOMPreference) string_table_lookup(managed_oom_preference_table,
                                                          _MANAGED_OOM_PREFERENCE_MAX, s);
}

static const char *yes_no(bool b) {
        return b ? "yes" : "no";
}

/* Replaces *field with s (which may be NULL); takes ownership of s. */
static void replace_string(char **field, char *s) {
        free(*field);
        *field = s;
}

static int set_string(char **field, const char *s) {
        char *copy = NULL;

        if (s) {
                copy = strdup(s);
                if (!copy)
                        return -ENOMEM;
        }
        replace_string(field, copy);
        return 0;
}

/* ---- value validators ---- */

/* Every parser explains a refusal: the reason ends up in the warning. */
static int reject(const char **ret_reason, const char *reason, int error) {
        *ret_reason = reason;
        return error;
}

/* "/a//b/./c/" → "/a/b/c". ".." is refused: it cannot be resolved without the file system. */
static int path_normalize(const char *s, char **ret, const char **ret_reason) {
        _cleanup_free_ char *p = NULL;
        size_t n = 0;

        if (s[0] != '/')
                return reject(ret_reason, "not an absolute path", -EINVAL);
        if (strlen(s) >= PATH_MAX)
                return reject(ret_reason, "path too long", -ENAMETOOLONG);
        p = malloc(strlen(s) + 1);
        if (!p)
                return -ENOMEM;

        for (const char *c = s; *c;) {
                size_t len = strcspn(c, "/");

                if (len == 2 && strneq(c, "..", 2))
                        return reject(ret_reason, "contains a \"..\" component", -EINVAL);
                if (len > 0 && !(len == 1 && c[0] == '.')) {
                        p[n++] = '/';
                        memcpy(p + n, c, len);
                        n += len;
                }
                c += len;
                c += strspn(c, "/");
        }
        if (n == 0)
                p[n++] = '/';
        p[n] = '\0';
        *ret = TAKE_PTR(p);
        return 0;
}

/* A systemd slice unit name, not the root slice: "protected.slice", "test-protected.slice". */
static int slice_name_verify(const char *s, const char **ret_reason) {
        size_t n = strlen(s), prefix;

        if (n > CONFIG_UNIT_NAME_MAX)
                return reject(ret_reason, "longer than 255 characters", -EINVAL);
        if (!endswith(s, ".slice"))
                return reject(ret_reason, "does not end in \".slice\"", -EINVAL);
        prefix = n - strlen(".slice");
        if (prefix == 0)
                return reject(ret_reason, "empty name before \".slice\"", -EINVAL);
        for (size_t i = 0; i < prefix; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.-", s[i]))
                        return reject(ret_reason, "contains a character other than A-Z a-z 0-9 : _ . -", -EINVAL);
        if (s[0] == '-' || s[prefix - 1] == '-')
                return reject(ret_reason, "a leading or trailing '-' (and the root slice \"-.slice\") is not allowed",
                              -EINVAL);
        for (size_t i = 0; i + 1 < prefix; i++)
                if (s[i] == '-' && s[i + 1] == '-')
                        return reject(ret_reason, "contains \"--\"", -EINVAL);
        return 0;
}

/* A POSIX-ish group name as shadow's useradd accepts: [a-z_][a-z0-9_-]*[$]?, at most 32 characters. */
static int group_name_verify(const char *s, const char **ret_reason) {
        size_t n = strlen(s);

        if (n > CONFIG_GROUP_NAME_MAX)
                return reject(ret_reason, "longer than 32 characters", -EINVAL);
        if (n == 0 || !strchr("abcdefghijklmnopqrstuvwxyz_", s[0]))
                return reject(ret_reason, "must start with a lower-case letter or '_'", -EINVAL);
        for (size_t i = 1; i < n; i++) {
                if (s[i] == '$' && i == n - 1)
                        break;
                if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", s[i]))
                        return reject(ret_reason, "contains a character other than a-z 0-9 _ - (or a final $)",
                                      -EINVAL);
        }
        return 0;
}

static const char *size_error(const char *value, int r) {
        if (r == -EOPNOTSUPP)
                return "a percentage, but the machine's RAM size is unknown";
        if (r == -ERANGE)
                return strchr(value, '%') ? "percentage out of range 0..100" : "too large";
        return "not a size (bytes, with an optional K, M, G or T suffix and then decimals, as in 1.5G, or N% of RAM)";
}

static int parse_budget(const char *s, uint64_t total_ram, uint64_t *ret) {
        if (streq(s, "infinity")) {
                *ret = 0;
                return 0;
        }
        return parse_size(s, total_ram, ret);
}

/* ---- one parser per key; each leaves c untouched on failure ---- */

static int config_parse_backend(Config *c, const char *v, const char **ret_reason) {
        BackendType t = backend_type_from_string(v);

        if (t >= _BACKEND_TYPE_MAX)
                return reject(ret_reason, "expected auto, systemd, cgroupfs or adj-only", -EINVAL);
        c->backend = t;
        return 0;
}

static int config_parse_cgroup_root(Config *c, const char *v, const char **ret_reason) {
        char *p;
        int r;

        if (isempty(v)) {
                replace_string(&c->cgroup_root, NULL);
                return 0;
        }
        r = path_normalize(v, &p, ret_reason);
        if (r < 0)
                return r;
        replace_string(&c->cgroup_root, p);
        return 0;
}

static int config_parse_slice(Config *c, const char *v, const char **ret_reason) {
        int r;

        if (isempty(v))
                return set_string(&c->slice, OOMPROTECT_SLICE);
        r = slice_name_verify(v, ret_reason);
        if (r < 0)
                return r;
        return set_string(&c->slice, v);
}

static int parse_budget_field(char **field, const char *v, const char **ret_reason) {
        uint64_t bytes;
        int r;

        r = parse_budget(v, physical_memory(), &bytes);
        if (r == -EINVAL)
                return reject(ret_reason,
                              "not a size (bytes, with an optional K, M, G or T suffix and then decimals, as in 1.5G, "
                              "N% of RAM, or infinity)", r);
        if (r < 0)
                return reject(ret_reason, size_error(v, r), r);
        return set_string(field, v);
}

static int config_parse_memory_min_budget(Config *c, const char *v, const char **ret_reason) {
        return parse_budget_field(&c->memory_min_budget, v, ret_reason);
}

static int config_parse_memory_min_budget_per_user(Config *c, const char *v, const char **ret_reason) {
        return parse_budget_field(&c->memory_min_budget_per_user, v, ret_reason);
}

static int parse_size_field(uint64_t *field, const char *v, const char **ret_reason) {
        uint64_t bytes;
        int r;

        r = parse_size(v, physical_memory(), &bytes);
        if (r < 0)
                return reject(ret_reason, size_error(v, r), r);
        if (bytes == UINT64_MAX)
                return reject(ret_reason, "infinity would protect more than the machine has; give a size", -ERANGE);
        *field = bytes;
        return 0;
}

static int config_parse_default_memory_min(Config *c, const char *v, const char **ret_reason) {
        return parse_size_field(&c->default_memory_min, v, ret_reason);
}

static int config_parse_default_memory_low(Config *c, const char *v, const char **ret_reason) {
        return parse_size_field(&c->default_memory_low, v, ret_reason);
}

static int parse_bool_field(bool *field, const char *v, const char **ret_reason) {
        int r = parse_boolean(v);

        if (r < 0)
                return reject(ret_reason, "not a boolean (yes/no, true/false, on/off, 1/0)", r);
        *field = r;
        return 0;
}

static int config_parse_oom_group(Config *c, const char *v, const char **ret_reason) {
        return parse_bool_field(&c->oom_group, v, ret_reason);
}

static int config_parse_restore_on_stop(Config *c, const char *v, const char **ret_reason) {
        return parse_bool_field(&c->restore_on_stop, v, ret_reason);
}

static int config_parse_oom_score_adjust(Config *c, const char *v, const char **ret_reason) {
        int r;

        r = parse_int_range(v, OOMPROTECT_OOM_SCORE_ADJ_MIN, OOMPROTECT_OOM_SCORE_ADJ_MAX, &c->oom_score_adjust);
        if (r < 0)
                return reject(ret_reason, r == -ERANGE ? "out of range -1000..1000" : "not a decimal integer", r);
        return 0;
}

static int config_parse_managed_oom_preference(Config *c, const char *v, const char **ret_reason) {
        ManagedOOMPreference p = managed_oom_preference_from_string(v);

        if (p >= _MANAGED_OOM_PREFERENCE_MAX)
                return reject(ret_reason, "expected none, avoid or omit", -EINVAL);
        c->managed_oom_preference = p;
        return 0;
}

static int config_parse_allow_group(Config *c, const char *v, const char **ret_reason) {
        int r;

        if (isempty(v)) {
                replace_string(&c->allow_group, NULL);
                return 0;
        }
        r = group_name_verify(v, ret_reason);
        if (r < 0)
                return r;
        return set_string(&c->allow_group, v);
}

static int parse_count_field(unsigned *field, const char *v, const char **ret_reason) {
        int n, r;

        r = parse_int_range(v, 1, CONFIG_MAX_PROTECTED_MAX, &n);
        if (r < 0)
                return reject(ret_reason, r == -ERANGE ? "out of range 1..1000000" : "not a decimal integer", r);
        *field = (unsigned) n;
        return 0;
}

static int config_parse_max_protected(Config *c, const char *v, const char **ret_reason) {
        return parse_count_field(&c->max_protected, v, ret_reason);
}

static int config_parse_max_protected_per_user(Config *c, const char *v, const char **ret_reason) {
        return parse_count_field(&c->max_protected_per_user, v, ret_reason);
}

static int parse_directory(char **field, const char *v, const char *def, const char **ret_reason) {
        char *p;
        int r;

        if (isempty(v))
                return set_string(field, def);
        r = path_normalize(v, &p, ret_reason);
        if (r < 0)
                return r;
        if (streq(p, "/")) {
                free(p);
                return reject(ret_reason, "must not be the root directory", -EINVAL);
        }
        replace_string(field, p);
        return 0;
}

static int config_parse_state_directory(Config *c, const char *v, const char **ret_reason) {
        return parse_directory(&c->state_directory, v, OOMPROTECT_STATE_DIRECTORY, ret_reason);
}

static int config_parse_compat_directory(Config *c, const char *v, const char **ret_reason) {
        return parse_directory(&c->compat_directory, v, OOMPROTECT_COMPAT_DIRECTORY, ret_reason);
}

/* ---- issue 16: rules and the guard rail (RuleDirectories=, MaxProtectedMemory=) ---- */

/* Space-separated absolute directories, earlier ones masking later ones; normalized as written back. */
static int config_parse_rule_directories(Config *c, const char *v, const char **ret_reason) {
        _cleanup_free_ char *out = NULL, *copy = NULL;
        char *save = NULL;

        if (isempty(v))
                return set_string(&c->rule_directories, CONFIG_RULE_DIRECTORIES_DEFAULT);
        copy = strdup(v);
        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, WHITESPACE, &save); w; w = strtok_r(NULL, WHITESPACE, &save)) {
                _cleanup_free_ char *p = NULL;
                char *joined;
                int r;

                r = path_normalize(w, &p, ret_reason);
                if (r < 0)
                        return r;
                if (asprintf(&joined, "%s%s%s", strempty(out), out ? " " : "", p) < 0)
                        return -ENOMEM;
                free(out);
                out = joined;
        }
        if (!out)
                return set_string(&c->rule_directories, CONFIG_RULE_DIRECTORIES_DEFAULT);
        replace_string(&c->rule_directories, TAKE_PTR(out));
        return 0;
}

static int config_parse_max_protected_memory(Config *c, const char *v, const char **ret_reason) {
        return parse_budget_field(&c->max_protected_memory, v, ret_reason);
}

/* ---- end of issue 16's block ---- */

static const ConfigKey config_keys[] = {
        { "Backend",              config_parse_backend,                false },
        { "CgroupRoot",           config_parse_cgroup_root,            true  },
        { "Slice",                config_parse_slice,                  true  },
        { "MemoryMinBudget",      config_parse_memory_min_budget,      false },
        { "DefaultMemoryMin",     config_parse_default_memory_min,     false },
        { "DefaultMemoryLow",     config_parse_default_memory_low,     false },
        { "OOMGroup",             config_parse_oom_group,              false },
        { "OOMScoreAdjust",       config_parse_oom_score_adjust,       false },
        { "ManagedOOMPreference", config_parse_managed_oom_preference, false },
        { "AllowGroup",           config_parse_allow_group,            true  },
        { "MaxProtected",         config_parse_max_protected,          false },
        { "MaxProtectedPerUser",  config_parse_max_protected_per_user, false },
        { "MemoryMinBudgetPerUser", config_parse_memory_min_budget_per_user, false },
        { "RestoreOnStop",        config_parse_restore_on_stop,        false },
        { "StateDirectory",       config_parse_state_directory,        true  },
        { "CompatDirectory",      config_parse_compat_directory,       true  },
        { "RuleDirectories",      config_parse_rule_directories,       true  },
        { "MaxProtectedMemory",   config_parse_max_protected_memory,   false },
};

static const ConfigKey *config_key_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (streq(config_keys[i].name, name))
                        return &config_keys[i];
        return NULL;
}

int config_set(Config *c, const char *key, const char *value, const char *file, unsigned line) {
        const char *reason = "invalid value";
        const ConfigKey *k;
        int r;

        file = file ?: "<config>";
        value = value ?: "";
        k = config_key_find(key);
        if (!k) {
                log_warning("%s:%u: Unknown key \"%s\" in [" CONFIG_SECTION "], ignoring.", file, line, key);
                return -ENOENT;
        }
        if (isempty(value) && !k->empty_ok)
                r = reject(&reason, "empty value", -EINVAL);
        else
                r = k->parse(c, value, &reason);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                log_warning("%s:%u: Invalid %s=%s, ignoring: %s.", file, line, key, value, reason);
        return r;
}

/* ---- defaults, copies, output ---- */

int config_init(Config *c) {
        *c = (Config) {
                .backend = BACKEND_AUTO,
                .oom_group = false,
                .oom_score_adjust = OOMPROTECT_OOM_SCORE_ADJ_MIN,
                .managed_oom_preference = MANAGED_OOM_PREFERENCE_OMIT,
                .max_protected = CONFIG_MAX_PROTECTED_DEFAULT,
                .max_protected_per_user = CONFIG_MAX_PROTECTED_PER_USER_DEFAULT,
                .memory_min_budget_per_user = strdup(CONFIG_MEMORY_MIN_BUDGET_PER_USER_DEFAULT),
                .restore_on_stop = false,
                .slice = strdup(OOMPROTECT_SLICE),
                .memory_min_budget = strdup(CONFIG_MEMORY_MIN_BUDGET_DEFAULT),
                .allow_group = strdup(OOMPROTECT_ALLOW_GROUP),
                .state_directory = strdup(OOMPROTECT_STATE_DIRECTORY),
                .compat_directory = strdup(OOMPROTECT_COMPAT_DIRECTORY),
                .rule_directories = strdup(CONFIG_RULE_DIRECTORIES_DEFAULT),
                .max_protected_memory = strdup(CONFIG_MAX_PROTECTED_MEMORY_DEFAULT),
        };
        if (!c->slice || !c->memory_min_budget || !c->memory_min_budget_per_user || !c->allow_group || !c->state_directory ||
            !c->compat_directory || !c->rule_directories || !c->max_protected_memory) {
                config_done(c);
                return -ENOMEM;
        }
        return 0;
}

void config_done(Config *c) {
        if (!c)
                return;
        free(c->cgroup_root);
        free(c->slice);
        free(c->memory_min_budget);
        free(c->memory_min_budget_per_user);
        free(c->allow_group);
        free(c->state_directory);
        free(c->compat_directory);
        free(c->rule_directories);
        free(c->max_protected_memory);
        *c = (Config) {};
}

static int config_copy(const Config *src, Config *ret) {
        _cleanup_(config_done) Config t = *src;

        /* The scalars are copied above; now replace the borrowed strings by copies of their own. */
        t.cgroup_root = t.slice = t.memory_min_budget = t.memory_min_budget_per_user = NULL;
        t.allow_group = t.state_directory = t.compat_directory = NULL;
        t.rule_directories = t.max_protected_memory = NULL;
        if (set_string(&t.cgroup_root, src->cgroup_root) < 0 ||
            set_string(&t.slice, src->slice) < 0 ||
            set_string(&t.memory_min_budget, src->memory_min_budget) < 0 ||
            set_string(&t.memory_min_budget_per_user, src->memory_min_budget_per_user) < 0 ||
            set_string(&t.allow_group, src->allow_group) < 0 ||
            set_string(&t.state_directory, src->state_directory) < 0 ||
            set_string(&t.compat_directory, src->compat_directory) < 0 ||
            set_string(&t.rule_directories, src->rule_directories) < 0 ||
            set_string(&t.max_protected_memory, src->max_protected_memory) < 0)
                return -ENOMEM;
        *ret = t;
        t = (Config) {};
        return 0;
}

static uint64_t budget_bytes(const char *budget, uint64_t total_ram) {
        uint64_t bytes;

        if (isempty(budget))
                return 0;
        if (parse_budget(budget, total_ram, &bytes) < 0)
                return 0; /* a percentage of unknown RAM: no budget, as config_load refused it anyway */
        return bytes;
}

uint64_t config_budget_bytes(const Config *c, uint64_t total_ram) {
        return budget_bytes(c->memory_min_budget, total_ram);
}

uint64_t config_budget_per_user_bytes(const Config *c, uint64_t total_ram) {
        return budget_bytes(c->memory_min_budget_per_user, total_ram);
}

uint64_t config_max_protected_memory_bytes(const Config *c, uint64_t total_ram) {
        return budget_bytes(c->max_protected_memory, total_ram);
}

void config_dump(const Config *c, FILE *f) {
        fputs("[" CONFIG_SECTION "]\n", f);
        fprintf(f, "Backend=%s\n", strempty(backend_type_to_string(c->backend)));
        fprintf(f, "CgroupRoot=%s\n", strempty(c->cgroup_root));
        fprintf(f, "Slice=%s\n", strempty(c->slice));
        fprintf(f, "MemoryMinBudget=%s\n", strempty(c->memory_min_budget));
        fprintf(f, "DefaultMemoryMin=%" PRIu64 "\n", c->default_memory_min);
        fprintf(f, "DefaultMemoryLow=%" PRIu64 "\n", c->default_memory_low);
        fprintf(f, "OOMGroup=%s\n", yes_no(c->oom_group));
        fprintf(f, "OOMScoreAdjust=%d\n", c->oom_score_adjust);
        fprintf(f, "ManagedOOMPreference=%s\n", strempty(managed_oom_preference_to_string(c->managed_oom_preference)));
        fprintf(f, "AllowGroup=%s\n", strempty(c->allow_group));
        fprintf(f, "MaxProtected=%u\n", c->max_protected);
        fprintf(f, "MaxProtectedPerUser=%u\n", c->max_protected_per_user);
        fprintf(f, "MemoryMinBudgetPerUser=%s\n", strempty(c->memory_min_budget_per_user));
        fprintf(f, "RestoreOnStop=%s\n", yes_no(c->restore_on_stop));
        fprintf(f, "StateDirectory=%s\n", strempty(c->state_directory));
        fprintf(f, "CompatDirectory=%s\n", strempty(c->compat_directory));
        fprintf(f, "RuleDirectories=%s\n", strempty(c->rule_directories));
        fprintf(f, "MaxProtectedMemory=%s\n", strempty(c->max_protected_memory));
}

/* ---- reading files ---- */

/* A section header that inih accepted: warn when it is not [Manager]. */
static void config_check_section(LoadContext *ctx, const char *s) {
        size_t len = strcspn(s + 1, "]");

        if (len == strlen(CONFIG_SECTION) && strneq(s + 1, CONFIG_SECTION, len))
                return;
        log_warning("%s:%u: Unknown section [%.*s], ignoring its keys.", ctx->file, ctx->line, (int) len, s + 1);
        ctx->warnings++;
}

/*
 * Trims the line just read into ctx->buf and decides whether inih may see it.
 * Returns the text to hand over, or NULL (after a warning) for a line to skip.
 */
static char *config_filter_line(LoadContext *ctx, size_t n, size_t max) {
        IniLineProblem problem;
        char *s = ini_line_clean(ctx->buf, n, max, ctx->line == 1, &problem);

        if (problem == INI_LINE_NUL)
                log_warning("%s:%u: Line contains a NUL byte, ignoring.", ctx->file, ctx->line);
        else if (problem == INI_LINE_TOO_LONG)
                log_warning("%s:%u: Line longer than %zu characters, ignoring.", ctx->file, ctx->line, max - 2);
        else if (problem == INI_LINE_SYNTAX)
                log_warning("%s:%u: Syntax error, expected [Section], Key=Value or a comment, ignoring: %s",
                            ctx->file, ctx->line, ctx->buf + strspn(ctx->buf, WHITESPACE));
        if (!s) {
                ctx->warnings++;
                return NULL;
        }
        if (s[0] == '[')
                config_check_section(ctx, s);
        return s;
}

/* inih's fgets-like reader: counts lines, so the handler knows the line of every key. */
static char *config_read_line(char *str, int num, void *userdata) {
        LoadContext *ctx = userdata;
        const char *s;
        ssize_t n;

        if (ctx->error < 0 || num < 2)
                return NULL;
        errno = 0;
        n = getline(&ctx->buf, &ctx->bufsize, ctx->f);
        if (n < 0) {
                if (!feof(ctx->f))
                        ctx->error = negative_errno();
                return NULL;
        }
        ctx->line++;
        s = config_filter_line(ctx, (size_t) n, (size_t) num);
        snprintf(str, (size_t) num, "%s\n", s ?: ""); /* a skipped line becomes an empty one */
        return str;
}

static int config_handle_pair(void *userdata, const char *section, const char *name, const char *value) {
        LoadContext *ctx = userdata;
        int r;

        if (ctx->error < 0)
                return 1;
        if (isempty(section)) {
                log_warning("%s:%u: Key \"%s\" outside of a section, expected [" CONFIG_SECTION "] first, ignoring.",
                            ctx->file, ctx->line, name);
                ctx->warnings++;
        } else if (streq(section, CONFIG_SECTION)) {
                r = config_set(ctx->config, name, value, ctx->file, ctx->line);
                if (r == -ENOMEM)
                        ctx->error = r;
                else if (r < 0)
                        ctx->warnings++;
        } else {
                /* Warned about once, at the section header. */
                log_debug("%s:%u: Ignoring %s= in unknown section [%s].", ctx->file, ctx->line, name, section);
        }
        return 1; /* errors are counted here, never by inih */
}

static int open_regular(const char *path, FILE **ret) {
        _cleanup_close_ int fd = -EBADF;
        FILE *f;

        /* A FIFO in place of a config file must not hang us: refused, as is anything but a regular file. */
        fd = open_regular_file_at(AT_FDCWD, path, 0);
        if (fd < 0)
                return fd;
        f = fdopen(fd, "r");
        if (!f)
                return negative_errno();
        TAKE_FD(fd);
        *ret = f;
        return 0;
}

static int config_parse_file(LoadContext *ctx, const char *path, FILE *f) {
        int r;

        ctx->file = path;
        ctx->f = f;
        ctx->line = 0;
        r = ini_parse_stream(config_read_line, ctx, config_handle_pair, ctx);
        ctx->f = NULL;
        if (ctx->error < 0)
                return ctx->error;
        if (r < 0)
                return -ENOMEM;
        if (r > 0) {
                /* Not expected: config_filter_line() already hides every line inih would refuse. */
                log_warning("%s:%d: Syntax error, ignoring.", path, r);
                ctx->warnings++;
        }
        return 0;
}

static int config_load_file(LoadContext *ctx, const char *path) {
        FILE *f = NULL;
        int r;

        r = open_regular(path, &f);
        if (r < 0)
                return r;
        r = config_parse_file(ctx, path, f);
        fclose(f);
        return r;
}

static int dropin_filter(const struct dirent *de) {
        return de->d_name[0] != '.' && endswith(de->d_name, ".conf");
}

static int config_load_dropin(LoadContext *ctx, const char *dir, const char *name) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        r = config_load_file(ctx, path);
        if (r == -ENOENT)
                return 0; /* removed since we listed the directory */
        if (r == -EISDIR || r == -EBADFD) {
                log_warning("%s: Not a regular file, ignoring.", path);
                ctx->warnings++;
                return 0;
        }
        return r;
}

static int config_load_dropins(LoadContext *ctx, const char *dir) {
        struct dirent **list = NULL;
        int n, r = 0;

        if (isempty(dir))
                return 0;
        n = scandir(dir, &list, dropin_filter, alphasort);
        if (n < 0)
                return errno == ENOENT ? 0 : negative_errno();
        for (int i = 0; i < n; i++) {
                if (r >= 0)
                        r = config_load_dropin(ctx, dir, list[i]->d_name);
                free(list[i]);
        }
        free(list);
        return r;
}

static void load_context_done(LoadContext *ctx) {
        free(ctx->buf);
}

int config_load(Config *c, const char *path, bool required, const char *dropin_dir) {
        _cleanup_(config_done) Config new = {};
        _cleanup_(load_context_done) LoadContext ctx = { .config = &new };
        int r;

        /* Work on a copy: a file that cannot be read leaves *c as it was. */
        r = config_copy(c, &new);
        if (r < 0)
                return r;
        if (!isempty(path)) {
                r = config_load_file(&ctx, path);
                if (r == -ENOENT && !required)
                        log_debug("%s: No such file, using the defaults and drop-ins.", path);
                else if (r < 0)
                        return r;
        }
        r = config_load_dropins(&ctx, dropin_dir);
        if (r < 0)
                return r;

        Config old = *c;
        *c = new;
        new = old; /* freed on return */
        return ctx.warnings;
}
