/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The names every oomprotect interface agrees on: the D-Bus API, the
 * historic ctl/status text protocol and the default paths. Shared by the
 * daemon, the CLI, the OCI hook and the client library.
 */

#define OOMPROTECT_VERSION_STRING "0.1.0"

/* D-Bus */
#define OOMPROTECT_BUS_NAME "org.oomprotect"
#define OOMPROTECT_OBJECT_PATH "/org/oomprotect"
#define OOMPROTECT_MANAGER_INTERFACE "org.oomprotect.Manager"
/* Requests made on behalf of another process, for oomprotect-cuse only (root; see conf/org.oomprotect.conf). */
#define OOMPROTECT_TRUSTED_INTERFACE "org.oomprotect.Trusted"

#define OOMPROTECT_ERROR_PREFIX "org.oomprotect.Error."
#define OOMPROTECT_ERROR_NO_SUCH_PROCESS OOMPROTECT_ERROR_PREFIX "NoSuchProcess"
#define OOMPROTECT_ERROR_NOT_PROTECTED OOMPROTECT_ERROR_PREFIX "NotProtected"
#define OOMPROTECT_ERROR_ALREADY_PROTECTED OOMPROTECT_ERROR_PREFIX "AlreadyProtected"
#define OOMPROTECT_ERROR_OVER_BUDGET OOMPROTECT_ERROR_PREFIX "OverBudget"
#define OOMPROTECT_ERROR_TOO_MANY OOMPROTECT_ERROR_PREFIX "TooManyProtected"
#define OOMPROTECT_ERROR_PERMISSION_DENIED OOMPROTECT_ERROR_PREFIX "PermissionDenied"
#define OOMPROTECT_ERROR_INVALID_PROCESS OOMPROTECT_ERROR_PREFIX "InvalidProcess"
#define OOMPROTECT_ERROR_INVALID_ARGUMENT OOMPROTECT_ERROR_PREFIX "InvalidArgument"
#define OOMPROTECT_ERROR_BACKEND OOMPROTECT_ERROR_PREFIX "BackendFailure"
#define OOMPROTECT_ERROR_BUSY OOMPROTECT_ERROR_PREFIX "Busy"
#define OOMPROTECT_ERROR_NO_SUCH_UNIT OOMPROTECT_ERROR_PREFIX "NoSuchUnit"

/* Default paths; every one can be changed in the configuration. */
#define OOMPROTECT_CONFIG_FILE "/etc/oomprotect/oomprotectd.conf"
#define OOMPROTECT_CONFIG_DROPIN_DIR "/etc/oomprotect/oomprotectd.conf.d"
#define OOMPROTECT_STATE_DIRECTORY "/run/oomprotect"
#define OOMPROTECT_STATE_FILE "state.json"
#define OOMPROTECT_COMPAT_DIRECTORY "/run/oom_kill_protection"
#define OOMPROTECT_CGROUP_ROOT "/sys/fs/cgroup"
#define OOMPROTECT_SLICE "protected.slice"
#define OOMPROTECT_SCOPE_PREFIX "oomprotect-"
#define OOMPROTECT_SCOPE_SUFFIX ".scope"
#define OOMPROTECT_ALLOW_GROUP "oomprotect"

/* The historic text protocol (the 2006 module's /proc/oom_kill_protection). */
#define OOMPROTECT_CTL_VERB "setprotection"
#define OOMPROTECT_CTL_FILE "ctl"
#define OOMPROTECT_CTL_SOCKET "ctl.sock"
#define OOMPROTECT_STATUS_FILE "status"
#define OOMPROTECT_USAGE_FILE "usage"
#define OOMPROTECT_CTL_LINE_MAX 4096 /* the module's PAGE_SIZE limit */

/* The module's OOM_DISABLE, in today's oom_score_adj range. */
#define OOMPROTECT_OOM_SCORE_ADJ_MIN (-1000)
#define OOMPROTECT_OOM_SCORE_ADJ_MAX 1000

/*
 * Journal message IDs of oomprotectd's log lines (journalctl MESSAGE_ID=...),
 * with OOMPROTECT_PID= and OOMPROTECT_UNIT= fields. Fixed forever.
 */
#define OOMPROTECT_MESSAGE_PROTECTED "3d8d0f5f2b8e4c3c9a51f0b7a4e6c2d1"
#define OOMPROTECT_MESSAGE_UNPROTECTED "6b1e2c4a9d7f4e0b8c3a5d2f1e9b7c60"
#define OOMPROTECT_MESSAGE_EXITED "a4f7c2e9b1d34a6e8f0c5b7d2e1a9c38"
#define OOMPROTECT_MESSAGE_FAILED "c9e2a7d4f1b64c8e9a3d5f0b7c2e1d45"
#define OOMPROTECT_MESSAGE_OOM_KILL "e1b5d8a3c7f24e9a8b6d0c4f2a7e3b19"
/* What protected processes hold crossed MaxProtectedMemory= (warning), or came back under it (notice). */
#define OOMPROTECT_MESSAGE_OVER_CEILING "5f3a9c1e7b2d4e8a9c6b0d3f1a7e5c24"
