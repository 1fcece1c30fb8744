// CharonRouter: options, construction and the outbox. The policy's other
// parts are in Router*.cc, one file per job (docs/broker.md, "Code").
#include "acheron/charon/CharonRouter.hh"

#include "acheron/charon/RouterInternal.hh"
#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::charon {

using namespace router_detail;

void RouterOptions::validate() const {
  auto fail = [](const std::string& what) { throw SetupError(what); };
  if (queue_ttl <= Duration::zero()) {
    fail(
        "queue_ttl must be positive (queued requests would expire at once) give it in "
        "seconds, e.g. 60");
  }
  if (no_worker_grace < Duration::zero()) {
    fail("no_worker_grace is negative (it is a duration) use 0 or more seconds");
  }
  if (heartbeat_interval <= Duration::zero()) {
    fail(
        "heartbeat_interval must be positive (workers would never be heartbeated) use 1 s, "
        "the ChAR0N value");
  }
  if (heartbeat_liveness < 1) {
    fail(
        "heartbeat_liveness must be at least 1 (it counts missed intervals) use 3, the "
        "ChAR0N value");
  }
  if (busy_timeout <= Duration::zero()) {
    fail(
        "busy_timeout must be positive (busy workers would die at once) use the longest "
        "event time you expect, e.g. 600 s");
  }
  if (max_job_retries < 0) fail("max_job_retries is negative (it is a count) use 0 or more");
  if (poison_deaths < 1) {
    fail("poison_deaths must be at least 1 (a count of worker deaths) use 2, the default");
  }
  if (expected_detector && expected_detector->size() == 0) {
    fail("the expected detector has no channels (nothing could be detected) check --detector");
  }
  if (dedupe_window < Duration::zero()) {
    fail("dedupe_window is negative (it is a duration) use 0 to disable the reply cache");
  }
  if (worker_prefetch < 1 || worker_prefetch > 1024) {
    fail("worker_prefetch " + std::to_string(worker_prefetch) +
         " is out of range (jobs in flight per worker) use 1 to 1024");
  }
  if (max_queue_jobs_per_host == 0) {
    fail(
        "max_queue_jobs_per_host is 0 (no host could queue a request) use 1 or more, e.g. "
        "256, or max_queue_jobs to bound only the whole queue");
  }
  if (limits.max_photons == 0) {
    fail("max_photons is 0 (every PHOTONDATA would be refused) raise the photon limit");
  }
  if (async && async_options.events_per_basket == 0) {
    fail("events_per_basket is 0 (nothing would ever be written) use 1 or more, e.g. 500");
  }
  if (async && !async_options.sink && async_options.outdir.empty()) {
    fail("the output directory is empty (run files need a place) give --outdir, e.g. .");
  }
}

CharonRouter::CharonRouter(RouterOptions options, TimePoint now)
    : options_(std::move(options)),
      started_(now),
      dedupe_(options_.dedupe_window, options_.dedupe_max_bytes),
      next_heartbeat_(now + options_.heartbeat_interval),
      no_workers_since_(now) {
  options_.validate();
  if (options_.async) {
    // Made at start, not at the first run: a broker that cannot write its
    // files (the default sink's directory) should not accept events.
    options_.async_options.sink = AsyncRuns::sink_for(options_.async_options);
  }
  if (options_.expected_detector) {
    detector_ = options_.expected_detector;
    detector_reply_ = wire::charon::encode_detector_info(*detector_);
    detector_source_ = "the operator";
    if (options_.async) open_runs_store();
  }
}

Outbox CharonRouter::take_outbox() {
  Outbox o;
  o.swap(out_);
  return o;
}

}  // namespace acheron::charon
