#include "acheron/dcss/Runner.hh"

#include "acheron/core/Log.hh"
#include "acheron/dcss/LoopDhs.hh"

namespace acheron::dcss {

DhsRunner::DhsRunner(DhsConfig config) : config_(std::move(config)) {
  dhs_ = std::make_unique<Dhs>(config_.dhs);
  if (config_.kind == "loop") loop_ = std::make_shared<LoopDhs>(config_.loop, *dhs_);
  session_ = std::make_unique<Session>(config_.dcss, *dhs_);
}

DhsRunner::~DhsRunner() {
  stop();
}

void DhsRunner::start() {
  if (loop_) loop_->start();
  session_->start();
}

void DhsRunner::stop() {
  if (session_) session_->stop();
  // Handlers still queued may call into the loop DHS: drain them first.
  if (dhs_) dhs_->shutdown();
  if (loop_) loop_->shutdown();
}

}  // namespace acheron::dcss
