// Work that would stall the event loop (password hashing, fsync of the
// user store) runs in nginx's thread pool; the request waits, blocked, and
// resumes on the event loop when it is done.

#include "ngx_http_twostep.h"


struct ngx_http_twostep_offload_t {
    std::function<void()>       work;     // in a pool thread: no nginx calls
    std::function<ngx_int_t()>  finish;   // back on the event loop
    std::function<ngx_int_t()>  abandoned;  // instead, if `work` failed
    bool                        running = false;
    bool                        failed = false;
};


#if (NGX_THREADS)

static void
ngx_http_twostep_offload_thread(void *data, ngx_log_t *log) noexcept
{
    auto job = *static_cast<ngx_http_twostep_offload_t **>(data);

    try {
        job->work();

    } catch (...) {
        job->failed = true;
    }
}


static void
ngx_http_twostep_offload_resume(ngx_http_request_t *r) noexcept
{
    ngx_int_t  rc;

    auto ctx = static_cast<ngx_http_twostep_ctx_t *>(
                   ngx_http_get_module_ctx(r->main, ngx_http_twostep_module));

    // A write event before the thread is done is not the end of the wait.
    if (ctx == NULL || ctx->offload == NULL || ctx->offload->running) {
        return;
    }

    ngx_http_twostep_offload_t *job = ctx->offload;
    ctx->offload = NULL;
    r->write_event_handler = ngx_http_request_empty_handler;

    try {
        if (!job->failed) {
            rc = job->finish();

        } else if (job->abandoned) {
            rc = job->abandoned();

        } else {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: %s", e.what());
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } catch (...) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: a hashing job failed");
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    // NGX_DONE: `finish` started another wait (a shared-state command),
    // which finalizes the request itself.
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static void
ngx_http_twostep_offload_event(ngx_event_t *ev) noexcept
{
    auto r = static_cast<ngx_http_request_t *>(ev->data);
    ngx_connection_t *c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    auto ctx = static_cast<ngx_http_twostep_ctx_t *>(
                   ngx_http_get_module_ctx(r->main, ngx_http_twostep_module));
    if (ctx && ctx->offload) {
        ctx->offload->running = false;
    }

    // If the request was terminated meanwhile, nginx swapped this handler
    // for its finalizer.
    r->write_event_handler(r);
    ngx_http_run_posted_requests(c);
}


// Queues `job`: NGX_DONE, or an error when nothing was queued. The post
// comes last: whatever fails or throws before it leaves no queued job
// behind for a request that is answered meanwhile.
static ngx_int_t
ngx_http_twostep_offload_post(ngx_http_request_t *r, ngx_thread_pool_t *pool,
    ngx_http_twostep_offload_t *job)
{
    ngx_thread_task_t  *task;

    task = ngx_thread_task_alloc(r->pool,
                                 sizeof(ngx_http_twostep_offload_t *));
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *static_cast<ngx_http_twostep_offload_t **>(task->ctx) = job;
    task->handler = ngx_http_twostep_offload_thread;
    task->event.data = r;
    task->event.handler = ngx_http_twostep_offload_event;

    // get_ctx throws when the pool is exhausted.
    ngx_http_twostep_ctx_t *ctx = ngx_http_twostep_get_ctx(r);

    // Fails when the queue is full (thread_pool max_queue); nginx logs it.
    if (ngx_thread_task_post(pool, task) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    // The request stays alive until the thread answers, even if the client
    // goes away meanwhile (the pattern of nginx's own thread reads).
    job->running = true;
    ctx->offload = job;
    r->main->blocked++;
    r->aio = 1;
    r->write_event_handler = ngx_http_twostep_offload_resume;

    return NGX_DONE;
}

#endif


ngx_int_t
ngx_http_twostep_offload(ngx_http_request_t *r, ngx_thread_pool_t *pool,
    std::function<void()> work, std::function<ngx_int_t()> finish,
    std::function<ngx_int_t()> abandoned)
{
    ngx_int_t  rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

#if (NGX_THREADS)
    auto job = ngx_http_twostep_pool_new<ngx_http_twostep_offload_t>(
                   r->pool);

    if (job != NULL) {
        try {
            job->work = std::move(work);
            job->finish = std::move(finish);
            job->abandoned = abandoned;
            rc = ngx_http_twostep_offload_post(r, pool, job);

        } catch (const std::bad_alloc &) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }
#endif

    // Nothing was queued: `finish` will never run.
    if (rc != NGX_DONE && abandoned) {
        return abandoned();
    }

    return rc;
}
