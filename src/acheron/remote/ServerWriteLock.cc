// RemoteServer: the single-writer lock (lease, refusals, status).
#include "acheron/remote/ServerImpl.hh"

namespace acheron::remote::detail {

bool ServerImpl::lock_held_by_other(std::uint64_t token, TimePoint now) const {
  return lock_holder != 0 && lock_holder != token && now < lock_expiry;
}

void ServerImpl::check_write(std::uint64_t token, bool mutating) {
  std::lock_guard lock(lock_mutex);
  const auto now = Clock::now();
  if (lock_holder != 0 && now >= lock_expiry) lock_holder = 0;  // lease expired
  if (token != 0 && token == lock_holder) lock_expiry = now + lock_lease;
  if (!mutating) return;
  if (lock_held_by_other(token, now)) {
    throw LockRefused(
        "another client holds the write lock (mutating call refused) wait for it to unlock or "
        "its lease to expire, or take it with lock(force=true)");
  }
  if (lock_holder == 0 && options.write_lock == WriteLock::required) {
    throw LockRefused(
        "this server requires the write lock for mutating calls and stream management (none "
        "held) call lock() first");
  }
}

Json ServerImpl::lock_status(std::uint64_t token) {
  std::lock_guard lock(lock_mutex);
  const auto now = Clock::now();
  if (lock_holder != 0 && now >= lock_expiry) lock_holder = 0;
  Json j = {{"held", lock_holder != 0},
            {"mine", lock_holder != 0 && lock_holder == token},
            {"lease_ms", lock_lease.count()}};
  j["remaining_ms"] =
      lock_holder == 0
          ? 0
          : std::chrono::duration_cast<std::chrono::milliseconds>(lock_expiry - now).count();
  return j;
}

}  // namespace acheron::remote::detail
