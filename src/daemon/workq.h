/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

/*
 * The daemon's work, taken in turns (issue 10, class 7). Each front end
 * hands what a client asked for (an authorized D-Bus call, a ctl.sock line)
 * to the queue under the client's name; the queue runs ONE item per loop
 * iteration, from the clients in turn (round-robin: a client with 100 calls
 * waiting and one with 1 each get one turn per round), at a lower priority
 * than the bus and the sockets. So reading stays ahead of working: a Ping,
 * or the first call of a quiet client, is read and answered (or queued at
 * the front of its own turn) while a flood waits its turns.
 *
 * Bounds: a client has at most WORK_QUEUE_PER_CLIENT_MAX items waiting and
 * all clients together WORK_QUEUE_MAX; one more is refused (-EBUSY, the
 * caller answers Busy), it is not queued and changes nothing.
 *
 * A WorkItem lives inside the request it runs (BusRequest, a ctl.sock
 * Connection); the owner cancels it before freeing itself.
 */

#define WORK_QUEUE_PER_CLIENT_MAX 256U
#define WORK_QUEUE_MAX 16384U

typedef struct WorkQueue WorkQueue;
typedef struct WorkClient WorkClient;
typedef struct WorkItem WorkItem;

typedef void (*WorkRun)(void *userdata);

struct WorkItem {
        WorkRun run;
        void *userdata;
        WorkClient *client; /* non-NULL while queued */
        WorkItem *prev, *next;
};

int work_queue_new(sd_event *event, WorkQueue **ret);
WorkQueue *work_queue_free(WorkQueue *q); /* items still queued are forgotten, never run */

/* Queues w for the client named client (copied); run(userdata) is called from the loop. -EBUSY when full. */
int work_queue_submit(WorkQueue *q, const char *client, WorkItem *w, WorkRun run, void *userdata);
/* Takes w out of the queue if it is still in it; a no-op otherwise. */
void work_queue_cancel(WorkItem *w);

size_t work_queue_length(const WorkQueue *q);
/* How many items the named client has waiting. */
size_t work_queue_client_length(const WorkQueue *q, const char *client);
