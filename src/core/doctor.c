/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor.h"
#include "macro.h"

/* ---- effective protection, the kernel's way ---- */

uint64_t doctor_effective_protection(uint64_t usage, uint64_t parent_usage, uint64_t setting,
                                     uint64_t parent_effective, uint64_t siblings_protected, bool recursiveprot) {
        uint64_t protected = MIN(usage, setting);
        unsigned __int128 ep, unclaimed;

        /* Overcommitted: each gets parent_effective in proportion to what it claims and uses. */
        if (siblings_protected > parent_effective)
                return (uint64_t) ((unsigned __int128) protected * parent_effective / siblings_protected);
        ep = protected;
        if (!recursiveprot)
                return protected;
        /* What the siblings leave unclaimed goes to their unprotected usage, proportionally. */
        if (parent_effective > siblings_protected && parent_usage > siblings_protected && usage > protected) {
                unclaimed = (unsigned __int128) (parent_effective - siblings_protected) * (usage - protected) /
                            (parent_usage - siblings_protected);
                ep += unclaimed;
        }
        return ep > UINT64_MAX ? UINT64_MAX : (uint64_t) ep;
}

void doctor_compute_protection(DoctorLink *links, size_t n, bool recursiveprot) {
        for (size_t i = 0; i < n; i++) {
                DoctorLink *l = &links[i];

                if (l->usage == 0) { /* the kernel does not even look: nothing to reclaim */
                        l->emin = l->elow = 0;
                        continue;
                }
                if (i == 0) { /* a child of the root: its own setting */
                        l->emin = l->min;
                        l->elow = l->low;
                        continue;
                }
                l->emin = doctor_effective_protection(l->usage, links[i - 1].usage, l->min, links[i - 1].emin,
                                                      l->siblings_min_usage, recursiveprot);
                l->elow = doctor_effective_protection(l->usage, links[i - 1].usage, l->low, links[i - 1].elow,
                                                      l->siblings_low_usage, recursiveprot);
        }
}

static uint64_t link_claim(const DoctorLink *links, size_t i, bool low) {
        uint64_t setting = low ? links[i].low : links[i].min;

        return i == 0 ? setting : MIN(links[i].usage, setting);
}

static uint64_t link_effective(const DoctorLink *l, bool low) {
        return low ? l->elow : l->emin;
}

DoctorCap doctor_find_cap(const DoctorLink *links, size_t n, bool low) {
        uint64_t want;

        if (n == 0)
                return (DoctorCap) { .reason = DOCTOR_CAP_NONE };
        if (links[n - 1].usage == 0)
                return (DoctorCap) { .link = n - 1, .reason = DOCTOR_CAP_NOTHING_CHARGED };
        want = link_effective(&links[n - 1], low);
        if (want >= link_claim(links, n - 1, low))
                return (DoctorCap) { .link = n - 1, .reason = DOCTOR_CAP_NONE };
        /* Protection only shrinks on the way down: the first link at the final value is where it was lost. */
        for (size_t k = 0; k < n; k++)
                if (link_effective(&links[k], low) == want)
                        return (DoctorCap) { .link = k,
                                             .reason = want < link_claim(links, k, low) ? DOCTOR_CAP_SHARED
                                                                                       : DOCTOR_CAP_SETTING };
        return (DoctorCap) { .link = n - 1, .reason = DOCTOR_CAP_SHARED };
}

size_t doctor_oom_rank(const int *scores, size_t n, int score) {
        size_t higher = 0;

        for (size_t i = 0; i < n; i++)
                if (scores[i] > score)
                        higher++;
        return higher + 1;
}

/* ---- the killers ---- */

static const char *const killer_names[_DOCTOR_KILLER_MAX] = {
        [DOCTOR_KILLER_KERNEL] = "kernel",       [DOCTOR_KILLER_SYSTEMD_OOMD] = "systemd-oomd",
        [DOCTOR_KILLER_EARLYOOM] = "earlyoom",   [DOCTOR_KILLER_NOHANG] = "nohang",
        [DOCTOR_KILLER_FB_OOMD] = "oomd",
};

const char *doctor_killer_name(DoctorKiller k) {
        return k >= 0 && k < _DOCTOR_KILLER_MAX ? killer_names[k] : NULL;
}

const char *doctor_killer_comm(DoctorKiller k) {
        return k == DOCTOR_KILLER_KERNEL ? NULL : doctor_killer_name(k);
}

const char *doctor_verdict_name(DoctorVerdict v) {
        static const char *const names[] = {
                [DOCTOR_VERDICT_HONOURED] = "honoured",       [DOCTOR_VERDICT_NOT_HONOURED] = "not-honoured",
                [DOCTOR_VERDICT_NOT_WATCHED] = "not-watched", [DOCTOR_VERDICT_NOT_RUNNING] = "not-running",
                [DOCTOR_VERDICT_UNKNOWN] = "unknown",
        };
        return v >= 0 && v < (int) ELEMENTSOF(names) ? names[v] : NULL;
}

void doctor_judgement_done(DoctorJudgement *j) {
        free(j->why);
        free(j->advice);
        *j = (DoctorJudgement) {};
}

_printf_(4, 5) static int judged(DoctorJudgement *ret, DoctorVerdict v, const char *advice, const char *fmt, ...) {
        _cleanup_free_ char *why = NULL, *adv = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&why, fmt, ap);
        va_end(ap);
        if (n < 0) {
                why = NULL;
                return -ENOMEM;
        }
        if (advice && !(adv = strdup(advice)))
                return -ENOMEM;
        *ret = (DoctorJudgement) { .verdict = v, .why = TAKE_PTR(why), .advice = TAKE_PTR(adv) };
        return 0;
}

static int protect_advice(const DoctorTarget *t, char **ret) {
        if (asprintf(ret, "oomprotectctl protect %d (oom_score_adj -1000), or OOMScoreAdjust=-1000 in its unit",
                     (int) t->pid) < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

static int judge_kernel(const DoctorTarget *t, DoctorJudgement *ret) {
        _cleanup_free_ char *advice = NULL;
        int r;

        if (t->pid == 1)
                return judged(ret, DOCTOR_VERDICT_HONOURED, NULL, "PID 1, the init process: the kernel never picks it");
        if (t->oom_score_adj == -1000)
                return judged(ret, DOCTOR_VERDICT_HONOURED, NULL,
                              "oom_score_adj is -1000: the kernel never picks it, for the whole machine or a "
                              "memory cgroup");
        r = protect_advice(t, &advice);
        if (r < 0)
                return r;
        return judged(ret, DOCTOR_VERDICT_NOT_HONOURED, advice,
                      "oom_score_adj is %d (oom_score %d): the kernel picks the highest oom_score", t->oom_score_adj,
                      t->oom_score);
}

static const char oomd_advice[] =
        "ManagedOOMPreference=omit on its unit, or have oomprotectd make its scope "
        "(ManagedOOMPreference=omit in oomprotectd.conf)";

static int judge_systemd_oomd(const DoctorTarget *t, DoctorJudgement *ret) {
        if (t->oomd_omit && t->cgroup_root_owned)
                return judged(ret, DOCTOR_VERDICT_HONOURED, NULL,
                              "its cgroup belongs to root and carries user.oomd_omit=1 "
                              "(ManagedOOMPreference=omit): systemd-oomd never picks it");
        if (t->oomd_watched == 0)
                return judged(ret, DOCTOR_VERDICT_NOT_WATCHED, t->oomd_omit ? NULL : oomd_advice,
                              "no unit on its cgroup chain has ManagedOOMSwap= or ManagedOOMMemoryPressure=kill: "
                              "systemd-oomd does not act on it now%s",
                              t->oomd_omit ? "" : " (it is not marked to be omitted if one does)");
        if (t->oomd_omit)
                return judged(ret, DOCTOR_VERDICT_NOT_HONOURED, "give the cgroup to root, or let systemd own it",
                              "user.oomd_omit is set, but systemd-oomd reads it only on cgroups that belong to root");
        if (t->oomd_watched < 0)
                return judged(ret, DOCTOR_VERDICT_UNKNOWN, oomd_advice,
                              "cannot tell whether a unit on its chain has ManagedOOM…=kill (systemd did not "
                              "answer), and its cgroup is not marked to be omitted");
        return judged(ret, DOCTOR_VERDICT_NOT_HONOURED, oomd_advice,
                      "watched through %s: systemd-oomd kills whole cgroups below by memory pressure or swap use, "
                      "whatever their oom_score_adj%s",
                      strna(t->oomd_watched_by), t->oomd_avoid ? " (user.oomd_avoid: it is picked last)" : "");
}

/* A cluster of earlyoom's short options ("-g", "-dg", "-m 5", "-m5"); returns how many argv entries it used. */
static size_t earlyoom_short_options(char **argv, size_t i, EarlyoomOptions *o) {
        for (const char *c = argv[i] + 1; *c; c++) {
                if (strchr("msMSNr", *c)) /* these take a value: the rest of the word, or the next word */
                        return c[1] || !argv[i + 1] ? 1 : 2;
                if (*c == 'g')
                        o->kill_group = true;
        }
        return 1;
}

void doctor_parse_earlyoom_argv(char **argv, EarlyoomOptions *ret) {
        EarlyoomOptions o = {};

        for (size_t i = 1; argv && argv[i];) {
                const char *a = argv[i];

                if (streq(a, "--"))
                        break;
                if ((streq(a, "--prefer") || streq(a, "--avoid") || streq(a, "--ignore")) && argv[i + 1]) {
                        if (streq(a, "--prefer"))
                                o.prefer = argv[i + 1];
                        else if (streq(a, "--avoid"))
                                o.avoid = argv[i + 1];
                        i += 2;
                        continue;
                }
                if (strneq(a, "--prefer=", 9))
                        o.prefer = a + 9;
                else if (strneq(a, "--avoid=", 8))
                        o.avoid = a + 8;
                else if (a[0] == '-' && a[1] && a[1] != '-') {
                        i += earlyoom_short_options(argv, i, &o);
                        continue;
                }
                i++;
        }
        *ret = o;
}

/* earlyoom matches --prefer/--avoid against the process name as an extended regular expression. */
static bool regex_matches(const char *pattern, const char *s) {
        regex_t re;
        bool m;

        if (!pattern || !s || regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
                return false;
        m = regexec(&re, s, 0, NULL, 0) == 0;
        regfree(&re);
        return m;
}

static int judge_earlyoom(const DoctorKillerProcess *p, const DoctorTarget *t, DoctorJudgement *ret) {
        _cleanup_free_ char *advice = NULL;
        EarlyoomOptions o;
        int r;

        doctor_parse_earlyoom_argv(p->argv, &o);
        if (t->oom_score_adj == -1000 && o.kill_group && t->pgrp_shared)
                return judged(ret, DOCTOR_VERDICT_NOT_HONOURED,
                              "run it in a process group of its own (setsid), or drop -g from EARLYOOM_ARGS",
                              "earlyoom runs with -g, which kills a victim's whole process group, and this process "
                              "shares its process group with others: it dies with any of them");
        if (t->oom_score_adj == -1000)
                return judged(ret, DOCTOR_VERDICT_HONOURED, NULL,
                              "earlyoom skips processes whose oom_score_adj is -1000");
        r = protect_advice(t, &advice);
        if (r < 0)
                return r;
        if (regex_matches(o.prefer, t->comm))
                return judged(ret, DOCTOR_VERDICT_NOT_HONOURED, advice,
                              "--prefer '%s' matches its name: earlyoom prefers it whatever its negative "
                              "oom_score_adj (%d)",
                              o.prefer, t->oom_score_adj);
        return judged(ret, DOCTOR_VERDICT_NOT_HONOURED, advice,
                      "earlyoom picks the highest oom_score (%d here); only oom_score_adj -1000 exempts%s",
                      t->oom_score,
                      regex_matches(o.avoid, t->comm) ? " (--avoid matches its name: it is picked later)" : "");
}

static int judge_nohang(const DoctorTarget *t, DoctorJudgement *ret) {
        _cleanup_free_ char *advice = NULL;
        int r;

        if (t->oom_score == 0)
                return judged(ret, DOCTOR_VERDICT_HONOURED, NULL,
                              "its oom_score is 0: nohang never picks a process of badness 0");
        r = protect_advice(t, &advice);
        if (r < 0)
                return r;
        return judged(ret, DOCTOR_VERDICT_NOT_HONOURED, advice,
                      "its oom_score is %d: nohang skips only oom_score 0 (oom_score_adj -1000)", t->oom_score);
}

static const char fb_oomd_advice[] =
        "protect it through oomprotectd, which marks the cgroups it owns, or setfattr -n trusted.oomd_avoid -v 1 "
        "on its cgroup directory";

static int judge_fb_oomd(const DoctorTarget *t, DoctorJudgement *ret) {
        if (t->fb_prefer)
                return judged(ret, DOCTOR_VERDICT_NOT_HONOURED, "remove oomd_prefer from its cgroup directory",
                              "its cgroup carries oomd_prefer, which oomd takes over oomd_avoid: it is picked first");
        if (t->fb_unreadable && !t->fb_avoid)
                return judged(ret, DOCTOR_VERDICT_UNKNOWN, "run doctor as root",
                              "only CAP_SYS_ADMIN may read trusted.* xattrs: whether its cgroup carries "
                              "trusted.oomd_avoid cannot be seen");
        if (t->fb_avoid)
                return judged(ret, DOCTOR_VERDICT_HONOURED, NULL,
                              "trusted.oomd_avoid is set on its cgroup: oomd's kill plugins pick it last among the "
                              "cgroups they compare");
        if (t->fb_avoid_user)
                return judged(ret, DOCTOR_VERDICT_UNKNOWN, fb_oomd_advice,
                              "only user.oomd_avoid is set on its cgroup: recent oomd read it, older versions only "
                              "trusted.oomd_avoid");
        return judged(ret, DOCTOR_VERDICT_NOT_HONOURED, fb_oomd_advice,
                      "oomd kills whole cgroups by its own rules, whatever their oom_score_adj, and its cgroup "
                      "carries no trusted.oomd_avoid (one on an ancestor has no effect)");
}

int doctor_judge(DoctorKiller k, const DoctorKillerProcess *p, const DoctorTarget *t, DoctorJudgement *ret) {
        if (k < 0 || k >= _DOCTOR_KILLER_MAX || !t)
                return -EINVAL;
        if (k != DOCTOR_KILLER_KERNEL && (!p || p->pid <= 0))
                return judged(ret, DOCTOR_VERDICT_NOT_RUNNING, NULL, "%s does not run", doctor_killer_name(k));
        switch (k) {
        case DOCTOR_KILLER_KERNEL:
                return judge_kernel(t, ret);
        case DOCTOR_KILLER_SYSTEMD_OOMD:
                return judge_systemd_oomd(t, ret);
        case DOCTOR_KILLER_EARLYOOM:
                return judge_earlyoom(p, t, ret);
        case DOCTOR_KILLER_NOHANG:
                return judge_nohang(t, ret);
        default:
                return judge_fb_oomd(t, ret);
        }
}
