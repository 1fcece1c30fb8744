// A whole DHS process from its configuration: the Dhs, its Session to DCSS
// and, for kind = "loop", the loop DHS operations with their camera and
// classifier clients. What `acheron dhs` runs; usable in tests and benches.
#pragma once

#include <memory>

#include "acheron/dcss/Config.hh"
#include "acheron/dcss/Dhs.hh"
#include "acheron/dcss/Session.hh"

namespace acheron::dcss {

class LoopDhs;

class DhsRunner final {
 public:
  explicit DhsRunner(DhsConfig config);
  ~DhsRunner();
  DhsRunner(const DhsRunner&) = delete;
  DhsRunner& operator=(const DhsRunner&) = delete;

  // Connects (and keeps reconnecting) in the background.
  void start();
  void stop();

  const DhsConfig& config() const noexcept { return config_; }
  Dhs& dhs() noexcept { return *dhs_; }
  Session& session() noexcept { return *session_; }
  LoopDhs* loop() noexcept { return loop_.get(); }

 private:
  DhsConfig config_;
  std::unique_ptr<Dhs> dhs_;
  std::shared_ptr<LoopDhs> loop_;
  std::unique_ptr<Session> session_;
};

}  // namespace acheron::dcss
