/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "workq.h"

/* Below the bus and the sockets (0), above the status rewrite (SD_EVENT_PRIORITY_IDLE). */
#define WORK_QUEUE_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 10)

/* A client with items waiting; one ring of them, the turn at q->turn. Freed once it has none. */
struct WorkClient {
        WorkQueue *queue;
        char *name;
        WorkItem *head, *tail;
        size_t n;
        WorkClient *prev, *next; /* the ring */
};

struct WorkQueue {
        sd_event_source *source;
        WorkClient *turn; /* whose item runs next; NULL when nothing waits */
        size_t n_clients, n;
};

static void client_unlink(WorkClient *c) {
        WorkQueue *q = c->queue;

        if (c->next == c)
                q->turn = NULL;
        else {
                c->prev->next = c->next;
                c->next->prev = c->prev;
                if (q->turn == c)
                        q->turn = c->next;
        }
        q->n_clients--;
        free(c->name);
        free(c);
}

/* The new client goes last in the round: just before the one whose turn it is. */
static WorkClient *client_new(WorkQueue *q, const char *name) {
        WorkClient *c = calloc(1, sizeof(WorkClient));

        if (!c)
                return NULL;
        c->name = strdup(name);
        if (!c->name) {
                free(c);
                return NULL;
        }
        c->queue = q;
        if (!q->turn) {
                c->prev = c->next = c;
                q->turn = c;
        } else {
                c->next = q->turn;
                c->prev = q->turn->prev;
                c->prev->next = c;
                q->turn->prev = c;
        }
        q->n_clients++;
        return c;
}

static WorkClient *client_find(const WorkQueue *q, const char *name) {
        WorkClient *c = q->turn;

        for (size_t i = 0; c && i < q->n_clients; i++, c = c->next)
                if (streq(c->name, name))
                        return c;
        return NULL;
}

static void item_unlink(WorkItem *w) {
        WorkClient *c = w->client;

        if (w->prev)
                w->prev->next = w->next;
        else
                c->head = w->next;
        if (w->next)
                w->next->prev = w->prev;
        else
                c->tail = w->prev;
        w->prev = w->next = NULL;
        w->client = NULL;
        c->n--;
        c->queue->n--;
        if (c->n == 0)
                client_unlink(c);
}

static int on_turn(sd_event_source *s, void *userdata) {
        WorkQueue *q = userdata;
        WorkClient *c = q->turn;
        WorkItem *w;

        if (!c)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        w = c->head;
        q->turn = c->next; /* the next client's turn, whatever this item does */
        item_unlink(w);    /* may free c */
        if (q->n == 0)
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        w->run(w->userdata); /* may free w, submit more, cancel others */
        return 0;
}

int work_queue_new(sd_event *event, WorkQueue **ret) {
        WorkQueue *q = calloc(1, sizeof(WorkQueue));
        int r;

        if (!q)
                return -ENOMEM;
        r = sd_event_add_defer(event, &q->source, on_turn, q);
        if (r >= 0)
                r = sd_event_source_set_priority(q->source, WORK_QUEUE_PRIORITY);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->source, SD_EVENT_OFF);
        if (r < 0) {
                work_queue_free(q);
                return r;
        }
        (void) sd_event_source_set_description(q->source, "work-queue");
        *ret = q;
        return 0;
}

WorkQueue *work_queue_free(WorkQueue *q) {
        if (!q)
                return NULL;
        while (q->turn)
                item_unlink(q->turn->head);
        sd_event_source_disable_unref(q->source);
        free(q);
        return NULL;
}

int work_queue_submit(WorkQueue *q, const char *client, WorkItem *w, WorkRun run, void *userdata) {
        WorkClient *c = client_find(q, client);
        int r;

        if (w->client)
                return -EALREADY;
        if (q->n >= WORK_QUEUE_MAX || (c && c->n >= WORK_QUEUE_PER_CLIENT_MAX))
                return -EBUSY;
        if (q->n == 0) {
                r = sd_event_source_set_enabled(q->source, SD_EVENT_ON);
                if (r < 0)
                        return r;
        }
        if (!c) {
                c = client_new(q, client);
                if (!c)
                        return -ENOMEM;
        }
        *w = (WorkItem) { .run = run, .userdata = userdata, .client = c, .prev = c->tail };
        if (c->tail)
                c->tail->next = w;
        else
                c->head = w;
        c->tail = w;
        c->n++;
        q->n++;
        return 0;
}

void work_queue_cancel(WorkItem *w) {
        WorkQueue *q;

        if (!w || !w->client)
                return;
        q = w->client->queue;
        item_unlink(w);
        if (q->n == 0)
                (void) sd_event_source_set_enabled(q->source, SD_EVENT_OFF);
}

size_t work_queue_length(const WorkQueue *q) {
        return q ? q->n : 0;
}

size_t work_queue_client_length(const WorkQueue *q, const char *client) {
        const WorkClient *c = q ? client_find(q, client) : NULL;

        return c ? c->n : 0;
}
