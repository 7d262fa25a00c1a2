// The shared-memory zone behind twostep::SharedState: an rbtree of records
// keyed by string with expiry and an LRU queue, in a slab pool every worker
// maps (the layout of nginx's limit_req zone).

#include "ngx_http_twostep.h"


struct ngx_http_twostep_record_t {
    ngx_rbtree_node_t      node;      // node.key: crc32 of the key
    ngx_queue_t            queue;     // in `queue` or `kept`, newest first
    int64_t                expires;
    twostep::StateRecord   value;
    u_short                len;
    u_char                 kept;      // never dropped before it expires
    u_char                 key[1];
};


struct ngx_http_twostep_shctx_t {
    ngx_rbtree_t           rbtree;
    ngx_rbtree_node_t      sentinel;
    ngx_queue_t            queue;     // records a full zone may drop (LRU)
    ngx_queue_t            kept;      // pinned records and counters
    ngx_atomic_t           revocations;  // read without the mutex
    ngx_uint_t             records;   // in both queues, for the metrics
    ngx_uint_t             evictions; // dropped before they expired
};


struct ngx_http_twostep_zone_ctx_t {
    ngx_http_twostep_shctx_t  *sh;
    ngx_slab_pool_t           *shpool;
};


// How many records one update may drop to make room before giving up.
#define NGX_HTTP_TWOSTEP_EVICT_MAX  64


// A line a flood could repeat on every request is logged once a second
// at most in each worker, as nginx tempers "limiting requests": the log
// stays readable and its disk is not filled for the attacker (OWASP ASVS
// 4.0.3 V7). The next line says how many were left out.
struct ngx_http_twostep_log_limit_t {
    time_t      logged;
    ngx_uint_t  quiet;
};


static void
ngx_http_twostep_log_limited(ngx_http_twostep_log_limit_t &limit,
    ngx_uint_t level, ngx_log_t *log, const char *text)
{
    if (limit.logged == ngx_time()) {
        limit.quiet++;
        return;
    }

    limit.logged = ngx_time();

    if (limit.quiet) {
        ngx_log_error(level, log, 0, "twostep: %s; %ui more times since the "
                      "last such line", text, limit.quiet);
    } else {
        ngx_log_error(level, log, 0, "twostep: %s", text);
    }

    limit.quiet = 0;
}


static ngx_http_twostep_record_t *
ngx_http_twostep_record(ngx_rbtree_node_t *node)
{
    return reinterpret_cast<ngx_http_twostep_record_t *>(node);
}


static ngx_int_t
ngx_http_twostep_record_cmp(ngx_http_twostep_record_t *rec, uint32_t hash,
    const u_char *key, size_t len)
{
    if (hash != rec->node.key) {
        return hash < rec->node.key ? -1 : 1;
    }

    return ngx_memn2cmp(const_cast<u_char *>(key), rec->key, len, rec->len);
}


static void
ngx_http_twostep_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_twostep_record_t  *rec = ngx_http_twostep_record(node);

    for ( ;; ) {
        p = ngx_http_twostep_record_cmp(ngx_http_twostep_record(temp),
                                        rec->node.key, rec->key, rec->len)
            < 0 ? &temp->left : &temp->right;

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_twostep_record_t *
ngx_http_twostep_lookup(ngx_http_twostep_shctx_t *sh, uint32_t hash,
    const u_char *key, size_t len)
{
    ngx_int_t           rc;
    ngx_rbtree_node_t  *node, *sentinel;

    node = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    while (node != sentinel) {
        rc = ngx_http_twostep_record_cmp(ngx_http_twostep_record(node),
                                         hash, key, len);
        if (rc == 0) {
            return ngx_http_twostep_record(node);
        }

        node = rc < 0 ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_twostep_drop(ngx_http_twostep_zone_ctx_t *ctx,
    ngx_http_twostep_record_t *rec)
{
    ngx_queue_remove(&rec->queue);
    ngx_rbtree_delete(&ctx->sh->rbtree, &rec->node);
    ngx_slab_free_locked(ctx->shpool, rec);
    ctx->sh->records--;
}


// As limit_req does: looks at no more than `n` records from the old end
// of `queue` and stops at the first that has not expired, so a write
// costs the same however many records the zone holds.
static void
ngx_http_twostep_expire(ngx_http_twostep_zone_ctx_t *ctx, ngx_queue_t *queue,
    int64_t now, ngx_uint_t n)
{
    ngx_queue_t                *q;
    ngx_http_twostep_record_t  *rec;

    while (n-- && !ngx_queue_empty(queue)) {
        q = ngx_queue_last(queue);
        rec = ngx_queue_data(q, ngx_http_twostep_record_t, queue);

        if (rec->expires > now) {
            return;
        }

        ngx_http_twostep_drop(ctx, rec);
    }
}


// Makes room for one record when the slab is full: the least recently used
// record that may be dropped, else any kept record that has expired (kept
// records expire at different times, so the whole queue is looked at, but
// only here, on a write, when nothing else is left). False if nothing
// could be dropped.
static bool
ngx_http_twostep_evict(ngx_http_twostep_zone_ctx_t *ctx, int64_t now,
    ngx_log_t *log)
{
    ngx_queue_t                *q, *prev;
    ngx_http_twostep_record_t  *rec;
    bool                        freed = false;

    if (!ngx_queue_empty(&ctx->sh->queue)) {
        rec = ngx_queue_data(ngx_queue_last(&ctx->sh->queue),
                             ngx_http_twostep_record_t, queue);

        static ngx_http_twostep_log_limit_t  dropping;

        if (rec->expires > now) {
            ctx->sh->evictions++;
            ngx_http_twostep_log_limited(dropping, NGX_LOG_WARN, log,
                "zone is full, dropping the least recently used empty "
                "records (raise twostep_zone)");
        }

        ngx_http_twostep_drop(ctx, rec);
        return true;
    }

    for (q = ngx_queue_last(&ctx->sh->kept);
         q != ngx_queue_sentinel(&ctx->sh->kept);
         q = prev)
    {
        prev = ngx_queue_prev(q);
        rec = ngx_queue_data(q, ngx_http_twostep_record_t, queue);

        if (rec->expires <= now) {
            ngx_http_twostep_drop(ctx, rec);
            freed = true;
        }
    }

    return freed;
}


ngx_http_twostep_zone_state::ngx_http_twostep_zone_state(
    ngx_http_request_t *r)
    : ctx_(nullptr), log_(r->connection->log)
{
    auto mcf = static_cast<ngx_http_twostep_main_conf_t *>(
                   ngx_http_get_module_main_conf(r, ngx_http_twostep_module));

    if (mcf->zone) {
        ctx_ = static_cast<ngx_http_twostep_zone_ctx_t *>(mcf->zone->data);
    }
}


bool
ngx_http_twostep_zone_state::update(std::string_view key, int64_t now,
    int64_t expires, const std::function<bool(twostep::StateRecord &)> &change,
    bool pinned)
{
    uint32_t                    hash;
    ngx_http_twostep_record_t  *rec;

    if (ctx_ == nullptr || ctx_->sh == nullptr || key.size() > 255) {
        return false;
    }

    auto k = reinterpret_cast<const u_char *>(key.data());
    hash = ngx_crc32_short(const_cast<u_char *>(k), key.size());

    ngx_shmtx_lock(&ctx_->shpool->mutex);

    rec = ngx_http_twostep_lookup(ctx_->sh, hash, k, key.size());

    twostep::StateRecord value;

    if (rec && rec->expires > now) {
        value = rec->value;
    }

    if (!change(value)) {
        ngx_shmtx_unlock(&ctx_->shpool->mutex);
        return true;
    }

    if (rec == NULL) {
        // Only writes clean up, and only a few records (a read stays a
        // look-up).
        ngx_http_twostep_expire(ctx_, &ctx_->sh->queue, now, 2);
        ngx_http_twostep_expire(ctx_, &ctx_->sh->kept, now, 2);

        size_t size = offsetof(ngx_http_twostep_record_t, key) + key.size();

        for ( ;; ) {
            rec = static_cast<ngx_http_twostep_record_t *>(
                      ngx_slab_alloc_locked(ctx_->shpool, size));

            if (rec != NULL || !ngx_http_twostep_evict(ctx_, now, log_)) {
                break;
            }
        }

        if (rec == NULL) {
            ngx_shmtx_unlock(&ctx_->shpool->mutex);

            static ngx_http_twostep_log_limit_t  refusing;

            ngx_http_twostep_log_limited(refusing, NGX_LOG_ERR, log_,
                "zone is full of records that must be kept (raise "
                "twostep_zone)");

            return false;
        }

        rec->node.key = hash;
        rec->len = static_cast<u_short>(key.size());
        ngx_memcpy(rec->key, k, key.size());
        ngx_rbtree_insert(&ctx_->sh->rbtree, &rec->node);
        ctx_->sh->records++;

    } else {
        ngx_queue_remove(&rec->queue);
    }

    rec->expires = expires;
    rec->value = value;
    rec->kept = pinned || twostep::holds_state(value);
    ngx_queue_insert_head(rec->kept ? &ctx_->sh->kept : &ctx_->sh->queue,
                          &rec->queue);

    ngx_shmtx_unlock(&ctx_->shpool->mutex);

    return true;
}


static ngx_int_t
ngx_http_twostep_init_zone(ngx_shm_zone_t *shm_zone, void *data) noexcept
{
    size_t                        len;
    ngx_http_twostep_zone_ctx_t  *ctx, *octx;

    ctx = static_cast<ngx_http_twostep_zone_ctx_t *>(shm_zone->data);
    octx = static_cast<ngx_http_twostep_zone_ctx_t *>(data);

    // A reload keeps the zone, and with it used codes, counters and
    // revocations.
    if (octx) {
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = reinterpret_cast<ngx_slab_pool_t *>(shm_zone->shm.addr);

    if (shm_zone->shm.exists) {
        ctx->sh = static_cast<ngx_http_twostep_shctx_t *>(ctx->shpool->data);
        return NGX_OK;
    }

    ctx->sh = static_cast<ngx_http_twostep_shctx_t *>(
                  ngx_slab_alloc(ctx->shpool,
                                 sizeof(ngx_http_twostep_shctx_t)));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_twostep_rbtree_insert_value);
    ngx_queue_init(&ctx->sh->queue);
    ngx_queue_init(&ctx->sh->kept);
    ctx->sh->revocations = 0;
    ctx->sh->records = 0;
    ctx->sh->evictions = 0;

    len = sizeof(" in twostep zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = static_cast<u_char *>(
                               ngx_slab_alloc(ctx->shpool, len));
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in twostep zone \"%V\"%Z",
                &shm_zone->shm.name);

    // We evict and log ourselves; the slab's own "no memory" is noise.
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_twostep_add_zone(ngx_conf_t *cf, ngx_http_twostep_main_conf_t *mcf)
{
    ngx_http_twostep_zone_ctx_t  *ctx;
    static ngx_str_t              name = ngx_string("twostep");

    ctx = static_cast<ngx_http_twostep_zone_ctx_t *>(
              ngx_pcalloc(cf->pool, sizeof(ngx_http_twostep_zone_ctx_t)));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    mcf->zone = ngx_shared_memory_add(cf, &name, mcf->zone_size,
                                      &ngx_http_twostep_module);
    if (mcf->zone == NULL) {
        return NGX_ERROR;
    }

    if (mcf->zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the twostep zone is already in use: only one "
                           "http block can protect locations");
        return NGX_ERROR;
    }

    mcf->zone->init = ngx_http_twostep_init_zone;
    mcf->zone->data = ctx;

    return NGX_OK;
}


// Workers start with the records the guard relies on (the revoked-before
// record), created once by whichever process gets here first.
ngx_int_t
ngx_http_twostep_prepare_zone(ngx_cycle_t *cycle,
    ngx_http_twostep_main_conf_t *mcf)
{
    if (mcf->zone == NULL) {
        return NGX_OK;
    }

    auto ctx = static_cast<ngx_http_twostep_zone_ctx_t *>(mcf->zone->data);

    ngx_http_twostep_zone_state state(ctx, cycle->log);

    return twostep::prepare_state(state, ngx_time()) ? NGX_OK : NGX_ERROR;
}


ngx_http_twostep_zone_state::ngx_http_twostep_zone_state(
    ngx_http_twostep_zone_ctx_t *ctx, ngx_log_t *log)
    : ctx_(ctx), log_(log)
{
}


std::uint64_t
ngx_http_twostep_zone_state::revocation_epoch()
{
    if (ctx_ == nullptr || ctx_->sh == nullptr) {
        return 0;
    }

    return ctx_->sh->revocations;
}


void
ngx_http_twostep_zone_state::next_revocation_epoch()
{
    if (ctx_ && ctx_->sh) {
        (void) ngx_atomic_fetch_add(&ctx_->sh->revocations, 1);
    }
}


// For the metrics, which read the zone (the zone never calls them): kept
// up to date under the lock, read once a scrape.
void
ngx_http_twostep_zone_stats(ngx_http_twostep_main_conf_t *mcf,
    ngx_uint_t *records, ngx_uint_t *evictions)
{
    ngx_http_twostep_zone_ctx_t  *ctx;

    *records = 0;
    *evictions = 0;

    if (mcf == NULL || mcf->zone == NULL) {
        return;
    }

    ctx = static_cast<ngx_http_twostep_zone_ctx_t *>(mcf->zone->data);
    if (ctx == NULL || ctx->sh == NULL) {
        return;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);
    *records = ctx->sh->records;
    *evictions = ctx->sh->evictions;
    ngx_shmtx_unlock(&ctx->shpool->mutex);
}
