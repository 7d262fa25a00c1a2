// Counters for Prometheus: an array of atomics in a shared zone of its own,
// so every worker adds to the same numbers without a lock (and without
// touching the state zone), and the twostep_metrics content handler that
// serves them like stub_status.

#include "ngx_http_twostep.h"
#include "ngx_http_twostep_conf.h"


struct ngx_http_twostep_counters_t {
    ngx_uint_t     count;       // the layout's size when it was made
    ngx_atomic_t   value[1];
};


#define NGX_HTTP_TWOSTEP_METRICS_TYPE  "text/plain; version=0.0.4"


static ngx_int_t ngx_http_twostep_metrics_handler(ngx_http_request_t *r)
    noexcept;


static ngx_http_twostep_counters_t *
ngx_http_twostep_counters(void)
{
    // The macro below dereferences the http configuration: none without
    // an http block.
    if (ngx_cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return NULL;
    }

    auto mcf = static_cast<ngx_http_twostep_main_conf_t *>(
                   ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                 ngx_http_twostep_module));

    if (mcf == NULL || mcf->metrics_zone == NULL) {
        return NULL;
    }

    return static_cast<ngx_http_twostep_counters_t *>(
               mcf->metrics_zone->data);
}


void
ngx_http_twostep_count(std::size_t slot)
{
    ngx_http_twostep_counters_t  *c = ngx_http_twostep_counters();

    if (c && slot < c->count) {
        (void) ngx_atomic_fetch_add(&c->value[slot], 1);
    }
}


void
ngx_http_twostep_count_provider(twostep::metrics::Provider provider,
    long status, ngx_msec_t ms)
{
    using namespace twostep::metrics;

    ngx_http_twostep_counters_t  *c = ngx_http_twostep_counters();

    if (c == NULL || c->count != counter_count()) {
        return;
    }

    ProviderResult result = status == 0 ? ProviderResult::error
                            : status >= 200 && status < 300
                              ? ProviderResult::success
                              : ProviderResult::failure;

    (void) ngx_atomic_fetch_add(&c->value[provider_slot(provider, result)],
                                1);
    (void) ngx_atomic_fetch_add(&c->value[duration_slot(provider, ms)], 1);
    (void) ngx_atomic_fetch_add(&c->value[duration_sum_slot(provider)], ms);
}


static ngx_int_t
ngx_http_twostep_init_metrics_zone(ngx_shm_zone_t *shm_zone, void *data)
    noexcept
{
    size_t                        size;
    ngx_slab_pool_t              *shpool;
    ngx_http_twostep_counters_t  *c;
    std::size_t                   n;

    // The first call builds the list of metric names: it can throw.
    try {
        n = twostep::metrics::counter_count();

    } catch (...) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "twostep: no memory for the metrics");
        return NGX_ERROR;
    }

    // A reload keeps the counts: Prometheus sees no reset.
    if (data) {
        c = static_cast<ngx_http_twostep_counters_t *>(data);
        if (c->count == n) {
            shm_zone->data = c;
            return NGX_OK;
        }
    }

    shpool = reinterpret_cast<ngx_slab_pool_t *>(shm_zone->shm.addr);

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    size = offsetof(ngx_http_twostep_counters_t, value)
           + n * sizeof(ngx_atomic_t);

    c = static_cast<ngx_http_twostep_counters_t *>(
            ngx_slab_calloc(shpool, size));
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->count = n;
    shpool->data = c;
    shm_zone->data = c;

    return NGX_OK;
}


ngx_int_t
ngx_http_twostep_add_metrics_zone(ngx_conf_t *cf,
    ngx_http_twostep_main_conf_t *mcf)
{
    static ngx_str_t  name = ngx_string("twostep_metrics");

    // A few hundred bytes of counters; 8 pages is the smallest zone the
    // slab allocator is comfortable with.
    mcf->metrics_zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                              &ngx_http_twostep_module);
    if (mcf->metrics_zone == NULL) {
        return NGX_ERROR;
    }

    mcf->metrics_zone->init = ngx_http_twostep_init_metrics_zone;

    return NGX_OK;
}


char *
ngx_http_twostep_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept
try {
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_twostep_main_conf_t  *mcf;

    clcf = static_cast<ngx_http_core_loc_conf_t *>(
               ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
    if (clcf->handler == ngx_http_twostep_metrics_handler) {
        return const_cast<char *>("is duplicate");
    }

    clcf->handler = ngx_http_twostep_metrics_handler;

    mcf = static_cast<ngx_http_twostep_main_conf_t *>(
              ngx_http_conf_get_module_main_conf(cf,
                                                 ngx_http_twostep_module));
    mcf->metrics = 1;

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


static ngx_int_t
ngx_http_twostep_metrics_handler(ngx_http_request_t *r) noexcept
{
    try {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return NGX_HTTP_NOT_ALLOWED;
        }

        auto mcf = static_cast<ngx_http_twostep_main_conf_t *>(
                       ngx_http_get_module_main_conf(r,
                                                     ngx_http_twostep_module));
        ngx_http_twostep_counters_t *c = ngx_http_twostep_counters();

        std::vector<std::uint64_t> values(
            twostep::metrics::counter_count(), 0);

        if (c && c->count == values.size()) {
            for (std::size_t i = 0; i < values.size(); i++) {
                values[i] = c->value[i];
            }
        }

        ngx_uint_t records, evictions;
        ngx_http_twostep_zone_stats(mcf, &records, &evictions);

        twostep::metrics::Gauges gauges;
        gauges.zone_records = records;
        values[twostep::metrics::single_slot(
            twostep::metrics::Counter::zone_evictions)] = evictions;

        return ngx_http_twostep_send_text(r, NGX_HTTP_TWOSTEP_METRICS_TYPE,
                   twostep::metrics::render(values, gauges));

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: metrics: %s", e.what());
    } catch (...) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: metrics: unknown error");
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}
