/*
 * rt_call: a worker runs a short function on another worker's thread and
 * waits for it, for the few operations that need an answer from the shard
 * owning another call in the middle of a route (dlg_get of another call).
 *
 * Deadlock freedom: a waiting worker keeps serving the calls made to it,
 * so two workers calling each other both progress. A called function must
 * not call rt_call itself (it never waits). Calls travel through a second,
 * small queue per worker (cmx/ccond), apart from the job queue, because a
 * waiting worker may run calls but not jobs: a job may route a message,
 * and routing must not nest inside a route.
 *
 * States: QUEUED (in the target's list; the waiter may withdraw it on
 * timeout), RUNNING (taken by the target: the waiter waits for it, it is
 * short), DONE (set under the caller's cmx, which the waiter sleeps on).
 */
#include <errno.h>
#include <time.h>

#include "net/net_int.h"

enum { CALL_QUEUED, CALL_RUNNING, CALL_DONE };

struct rt_call {
	struct rt_call *next;
	rt_call_fn *fn;
	void *arg;
	struct worker *caller;
	_Atomic int state;
	int err; /* 0, or ESHUTDOWN when the target stopped first */
};

static void call_done(struct rt_call *c, int err)
{
	struct worker *caller = c->caller;

	pthread_mutex_lock(&caller->cmx);
	c->err = err;
	atomic_store(&c->state, CALL_DONE);
	pthread_cond_broadcast(&caller->ccond);
	pthread_mutex_unlock(&caller->cmx);
}

/* Takes the calls made to w (marking them running) and runs them. */
void rt_calls_serve(struct worker *w)
{
	struct rt_call *list;

	pthread_mutex_lock(&w->cmx);
	list = w->chead;
	w->chead = w->ctail = NULL;
	for (struct rt_call *c = list; c; c = c->next)
		atomic_store(&c->state, CALL_RUNNING);
	pthread_mutex_unlock(&w->cmx);
	while (list) {
		struct rt_call *next = list->next;
		list->fn(w, list->arg);
		call_done(list, 0);
		list = next;
	}
}

/* The worker stops: later calls fail at once, queued ones now. */
void rt_calls_close(struct worker *w)
{
	struct rt_call *list;

	pthread_mutex_lock(&w->cmx);
	w->cclosed = true;
	list = w->chead;
	w->chead = w->ctail = NULL;
	for (struct rt_call *c = list; c; c = c->next)
		atomic_store(&c->state, CALL_RUNNING);
	pthread_mutex_unlock(&w->cmx);
	while (list) {
		struct rt_call *next = list->next;
		call_done(list, ESHUTDOWN);
		list = next;
	}
}

static bool withdraw(struct worker *target, struct rt_call *c)
{
	bool withdrawn = false;

	pthread_mutex_lock(&target->cmx);
	if (atomic_load(&c->state) == CALL_QUEUED) {
		struct rt_call **pp = &target->chead, *prev = NULL;
		for (; *pp; prev = *pp, pp = &(*pp)->next) {
			if (*pp == c) {
				*pp = c->next;
				if (target->ctail == c)
					target->ctail = prev;
				withdrawn = true;
				break;
			}
		}
	}
	pthread_mutex_unlock(&target->cmx);
	return withdrawn;
}

int rt_call(struct worker *self, unsigned i, rt_call_fn *fn, void *arg,
            unsigned timeout_ms)
{
	struct rt *rt = self->rt;
	struct worker *target;
	struct rt_call c = {.fn = fn, .arg = arg, .caller = self};
	struct timespec deadline;

	if (i >= rt->nworkers)
		return EINVAL;
	if (i == self->id) {
		fn(self, arg);
		return 0;
	}
	target = &rt->workers[i];
	atomic_init(&c.state, CALL_QUEUED);
	pthread_mutex_lock(&target->cmx);
	if (target->cclosed) {
		pthread_mutex_unlock(&target->cmx);
		return ESHUTDOWN;
	}
	if (target->ctail)
		target->ctail->next = &c;
	else
		target->chead = &c;
	target->ctail = &c;
	/* Wakes the target whether it sits in its loop or waits itself. */
	pthread_cond_broadcast(&target->ccond);
	uv_async_send(&target->async);
	pthread_mutex_unlock(&target->cmx);

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	bool timed_out = false;
	self->in_call = true;
	pthread_mutex_lock(&self->cmx);
	while (atomic_load(&c.state) != CALL_DONE) {
		if (self->chead) {
			pthread_mutex_unlock(&self->cmx);
			rt_calls_serve(self);
			pthread_mutex_lock(&self->cmx);
			continue;
		}
		if (timed_out) {
			/* Running over there: short, wait for it. */
			pthread_cond_wait(&self->ccond, &self->cmx);
			continue;
		}
		if (pthread_cond_timedwait(&self->ccond, &self->cmx,
		                           &deadline) == ETIMEDOUT) {
			pthread_mutex_unlock(&self->cmx);
			if (withdraw(target, &c)) {
				self->in_call = false;
				return ETIMEDOUT;
			}
			timed_out = true;
			pthread_mutex_lock(&self->cmx);
		}
	}
	pthread_mutex_unlock(&self->cmx);
	self->in_call = false;
	return c.err;
}

bool rt_in_call(const struct worker *w)
{
	return w->in_call;
}
