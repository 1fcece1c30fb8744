#include "acheron/dcss/Runner.hh"

#include "acheron/core/Log.hh"

namespace acheron::dcss {

DhsRunner::DhsRunner(DhsConfig config) : config_(std::move(config)) {
  dhs_ = std::make_unique<Dhs>(config_.dhs);
  if (config_.kind == "loop") {
    log::warn("dcss: the loop operations are not available in this build; running kind sim");
  }
  session_ = std::make_unique<Session>(config_.dcss, *dhs_);
}

DhsRunner::~DhsRunner() {
  stop();
}

void DhsRunner::start() {
  session_->start();
}

void DhsRunner::stop() {
  if (session_) session_->stop();
  if (dhs_) dhs_->shutdown();
}

}  // namespace acheron::dcss
