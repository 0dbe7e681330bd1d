/*
 * rpc_for_each_shard(): a handler on the management thread runs a short
 * function on each worker, in that worker's thread, one after the other.
 *
 * The waiting side may give up (timeout, shutdown) while its job still sits
 * in a worker's queue, and the function's argument may live on the
 * handler's stack. So a job runs its function only if the handler is still
 * waiting for that very job (a sequence number), and once it has started,
 * the handler waits for it to end whatever the timeout: the argument then
 * never outlives its use. The meeting point is refcounted by the server and
 * by every queued job, so a late job finds it still there.
 *
 * A job posted to a worker that has already stopped is freed by the runtime
 * without running: its reference to the meeting point is lost, a few bytes
 * at shutdown, which nothing else can observe.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "mgmt/mgmt_int.h"

struct shard_sync {
	pthread_mutex_t mx;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	atomic_uint refs;
	uint64_t seq;  /* last job issued */
	uint64_t want; /* the job the handler waits for; 0: none */
	uint64_t done; /* last job that ran */
	bool running;  /* job `want` is running its function */
	bool cancelled;
};

struct shard_job {
	struct rt_job job; /* first: the runtime frees the whole block */
	struct shard_sync *s;
	uint64_t seq;
	rpc_shard_fn *fn;
	void *arg;
};

struct shard_sync *shard_sync_new(void)
{
	struct shard_sync *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;

	if (s == NULL)
		return NULL;
	pthread_mutex_init(&s->mx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&s->refs, 1);
	return s;
}

void shard_sync_unref(struct shard_sync *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mx);
	free(s);
}

void shard_sync_cancel(struct shard_sync *s)
{
	pthread_mutex_lock(&s->mx);
	s->cancelled = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mx);
}

/* In the worker. */
static void job_run(struct worker *w, struct rt_job *j)
{
	struct shard_job *job = (struct shard_job *)j;
	struct shard_sync *s = job->s;
	bool mine;

	pthread_mutex_lock(&s->mx);
	mine = s->want == job->seq && !s->cancelled;
	if (mine)
		s->running = true;
	pthread_mutex_unlock(&s->mx);
	if (mine) {
		job->fn(w, job->arg);
		pthread_mutex_lock(&s->mx);
		s->running = false;
		s->done = job->seq;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mx);
	}
	shard_sync_unref(s);
}

static struct timespec deadline_after(unsigned ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Runs fn on worker i and waits; 0, ETIMEDOUT, ECANCELED or ENOMEM. */
static int run_on(struct shard_sync *s, struct rt *rt, unsigned i,
                  rpc_shard_fn *fn, void *arg, unsigned timeout_ms)
{
	struct shard_job *job = calloc(1, sizeof(*job));
	struct timespec dl;
	bool timed_out = false;
	uint64_t seq;
	int err;

	if (job == NULL)
		return ENOMEM;
	pthread_mutex_lock(&s->mx);
	if (s->cancelled) {
		pthread_mutex_unlock(&s->mx);
		free(job);
		return ECANCELED;
	}
	seq = ++s->seq;
	s->want = seq;
	pthread_mutex_unlock(&s->mx);
	atomic_fetch_add(&s->refs, 1);
	job->job.fn = job_run;
	job->s = s;
	job->seq = seq;
	job->fn = fn;
	job->arg = arg;
	dl = deadline_after(timeout_ms);
	rt_post(rt, i, &job->job);

	pthread_mutex_lock(&s->mx);
	for (;;) {
		if (s->done == seq) {
			err = 0;
			break;
		}
		if (s->running) {
			/* Started: it uses arg, so it must end first. */
			pthread_cond_wait(&s->cv, &s->mx);
			continue;
		}
		if (s->cancelled) {
			err = ECANCELED;
			break;
		}
		if (timed_out) {
			err = ETIMEDOUT;
			break;
		}
		if (pthread_cond_timedwait(&s->cv, &s->mx, &dl) == ETIMEDOUT)
			timed_out = true;
	}
	s->want = 0;
	pthread_mutex_unlock(&s->mx);
	return err;
}

int rpc_on_shard(struct rpc_ctx *ctx, unsigned i, rpc_shard_fn *fn, void *arg)
{
	struct mgmt *m = rpc_server(ctx);
	struct rt *rt = m->cfg.rt;
	unsigned timeout = m->cfg.shard_timeout_ms
	                           ? m->cfg.shard_timeout_ms
	                           : MGMT_DEFAULT_SHARD_TIMEOUT_MS;
	int err;

	if (rt == NULL) {
		rpc_fault(ctx, 500, "Internal error: no workers");
		return ESRCH;
	}
	if (i >= rt_workers(rt)) {
		rpc_fault(ctx, 500, "Internal error: no worker %u", i);
		return EINVAL;
	}
	err = run_on(m->sync, rt, i, fn, arg, timeout);
	if (err == ETIMEDOUT)
		rpc_fault(ctx, 500,
		          "Internal error: worker %u did not answer "
		          "within %u ms",
		          i, timeout);
	else if (err == ECANCELED)
		rpc_fault(ctx, 500, "Internal error: shutting down");
	else if (err)
		rpc_fault(ctx, 500, "Internal error: out of memory");
	return err;
}

int rpc_for_each_shard(struct rpc_ctx *ctx, rpc_shard_fn *fn, void *arg)
{
	struct rt *rt = rpc_server(ctx)->cfg.rt;

	if (rt == NULL) {
		rpc_fault(ctx, 500, "Internal error: no workers");
		return ESRCH;
	}
	for (unsigned i = 0; i < rt_workers(rt); i++) {
		int err = rpc_on_shard(ctx, i, fn, arg);
		if (err)
			return err;
	}
	return 0;
}
