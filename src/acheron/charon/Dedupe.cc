#include "acheron/charon/Dedupe.hh"

#include <algorithm>
#include <cstring>

#include <xxhash.h>

namespace acheron::charon {

std::uint64_t digest_frames(std::span<const Buffer> frames) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  for (const Buffer& f : frames) {
    const std::uint64_t size = f.size();
    XXH3_64bits_update(state, &size, sizeof size);  // frame boundaries count
    if (size) XXH3_64bits_update(state, f.data(), f.size());
  }
  const std::uint64_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return h;
}

Dedupe::Dedupe(Duration window, std::size_t max_bytes) : window_(window), max_bytes_(max_bytes) {}

std::size_t Dedupe::running() const noexcept {
  return entries_.size() - done_order_.size();
}

void add_route(Routes& routes, Route route) {
  const auto same = [&](const Route& r) {
    if (r.size() != route.size()) return false;
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (r[i].size() != route[i].size() ||
          (r[i].size() != 0 && std::memcmp(r[i].data(), route[i].data(), r[i].size()) != 0)) {
        return false;
      }
    }
    return true;
  };
  if (std::any_of(routes.begin(), routes.end(), same)) return;
  // The first sender keeps its place; later ones replace each other.
  if (routes.size() >= kMaxRoutes) routes.erase(routes.begin() + 1);
  routes.push_back(std::move(route));
}

Dedupe::Lookup Dedupe::arrive(const RequestKey& key, Route route, TimePoint now) {
  expire(now);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    Entry e;
    e.routes.push_back(std::move(route));
    entries_.emplace(key, std::move(e));
    return {};
  }
  ++duplicates_;
  Entry& e = it->second;
  if (!e.finished) {
    add_route(e.routes, std::move(route));
    return {Verdict::running, {}};
  }
  return {Verdict::finished, e.reply};
}

Routes Dedupe::finish(const RequestKey& key, const Frames& reply, TimePoint now) {
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.finished) return {};
  Routes routes = std::move(it->second.routes);
  it->second.routes.clear();
  if (!enabled()) {
    entries_.erase(it);
    return routes;
  }
  Entry& e = it->second;
  e.finished = true;
  e.reply = reply;
  e.bytes = 0;
  for (const auto& f : reply) e.bytes += f.size();
  e.finished_at = now;
  cached_bytes_ += e.bytes;
  done_order_.emplace_back(now, key);
  while (cached_bytes_ > max_bytes_ && !done_order_.empty()) evict_oldest();
  return routes;
}

void Dedupe::abandon(const RequestKey& key) {
  auto it = entries_.find(key);
  if (it != entries_.end() && !it->second.finished) entries_.erase(it);
}

void Dedupe::evict_oldest() {
  auto [t, key] = done_order_.front();
  done_order_.pop_front();
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.finished && it->second.finished_at == t) {
    cached_bytes_ -= it->second.bytes;
    entries_.erase(it);
  }
}

void Dedupe::expire(TimePoint now) {
  while (!done_order_.empty() && now - done_order_.front().first > window_) evict_oldest();
}

}  // namespace acheron::charon
