// Fair scheduling between clients for the queues of `acheron broker` and
// `acheron photon serve` (docs/security.md, "Fairness between clients").
//
// A FIFO serves requests in arrival order, so a client that queues
// thousands of events delays every other client's request behind all of its
// own. FairQueue serves clients in turn instead, weighted by what their
// requests cost (photons), on two levels:
//
//   1. hosts: the sender's Peer-Address. RAT-PAC opens a new REQ socket for
//      every request (charon-protocol.md §9), so only the address stays the
//      same across a client's requests, and many sockets from one host
//      share that host's turn;
//   2. connections within a host: the ZeroMQ routing identity. Clients on
//      one host (all loopback clients share 127.0.0.1) are served in turn,
//      so a DEALER client with hundreds of requests in flight does not hold
//      back a REQ client on the same host.
//
// Each level is self-clocked fair queuing (Golestani 1994): every child
// (host, or connection within a host) has a virtual time, its pass; the
// active child with the smallest pass goes next (among equals the one
// active longest), and serving a request of cost c advances the child's
// pass by c. The level's clock is the pass the child served last reached,
// and a child that becomes active starts there: it can neither bank credit
// while idle nor start behind another's backlog (it waits only for the
// children still behind the clock), and a stream of new children cannot
// hold back a backlogged one, whose pass the clock reaches. Over time every
// active child gets an equal share of cost: a client with 1,000,000-photon
// events gets one served while a client with 1,000-photon events gets about
// 500.
//
// A child is forgotten as soon as it has nothing queued, so memory is
// bounded by the number of queued requests, and a client whose requests
// arrive one at a time (RAT-PAC's REQ lock-step) starts each at the clock.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "acheron/core/Error.hh"
#include "acheron/core/Payload.hh"

namespace acheron::charon {

// Who sent a request, for fairness.
struct ClientId {
  std::string host;        // Peer-Address ("" when unknown)
  std::string connection;  // routing identity of the sending socket
};

// The client of a request from its Peer-Address and its routing envelope
// (the envelope's first frame is the sending socket's identity).
inline ClientId client_of(std::string_view peer, const std::vector<Buffer>& route) {
  ClientId c{std::string(peer), {}};
  if (!route.empty()) {
    c.connection.assign(reinterpret_cast<const char*>(route.front().data()), route.front().size());
  }
  return c;
}

// What a request of `photons` photons costs a client's share. The constant
// part is the cost of a request as such (decoding, a round trip, an engine
// call), in photons; it also gives events without photons a cost.
inline constexpr std::uint64_t kRequestCostPhotons = 1000;
inline std::uint64_t request_cost(std::uint64_t photons) noexcept {
  return photons + kRequestCostPhotons;
}

template <class T>
class FairQueue final {
 public:
  // Queues `item` for `client`; cost is what serving it counts against the
  // client's share (request_cost), at least 1.
  void push(const ClientId& client, std::uint64_t cost, T item) {
    auto [hit, inserted] = hosts_.try_emplace(client.host);
    Host& h = hit->second;
    if (inserted) {
      h.pass = clock_;
      h.seq = next_seq_++;
      order_.emplace(h.pass, h.seq, client.host);
    }
    auto [cit, new_connection] = h.connections.try_emplace(client.connection);
    Connection& c = cit->second;
    if (new_connection) {
      c.pass = h.clock;
      c.seq = next_seq_++;
      h.order.emplace(c.pass, c.seq, client.connection);
    }
    c.items.push_back({std::move(item), std::max<std::uint64_t>(cost, 1)});
    ++h.size;
    ++size_;
  }

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  // Requests queued by one host (Peer-Address).
  std::size_t queued(std::string_view host) const {
    auto it = hosts_.find(host);
    return it == hosts_.end() ? 0 : it->second.size;
  }
  // Hosts and connections with requests queued.
  std::size_t hosts() const noexcept { return hosts_.size(); }
  std::size_t connections() const noexcept {
    std::size_t n = 0;
    for (const auto& [name, h] : hosts_) n += h.connections.size();
    return n;
  }

  // The request served next. Not empty().
  const T& front() const {
    ACHERON_EXPECT(!empty(), "front() of an empty FairQueue (nothing is queued) check empty()");
    const Host& h = hosts_.find(std::get<2>(*order_.begin()))->second;
    const Connection& c = h.connections.find(std::get<2>(*h.order.begin()))->second;
    return c.items.front().item;
  }

  // Removes and returns the request served next. Not empty().
  T pop() {
    ACHERON_EXPECT(!empty(), "pop() of an empty FairQueue (nothing is queued) check empty()");
    const auto host_tag = order_.begin();
    const std::string host_name = std::get<2>(*host_tag);
    auto hit = hosts_.find(host_name);
    Host& h = hit->second;
    const auto connection_tag = h.order.begin();
    const std::string connection_name = std::get<2>(*connection_tag);
    auto cit = h.connections.find(connection_name);
    Connection& c = cit->second;
    Entry e = std::move(c.items.front());
    c.items.pop_front();

    h.order.erase(connection_tag);
    c.pass += e.cost;
    h.clock = c.pass;
    if (c.items.empty()) {
      h.connections.erase(cit);
    } else {
      h.order.emplace(c.pass, c.seq, connection_name);
    }

    order_.erase(host_tag);
    h.pass += e.cost;
    clock_ = h.pass;
    --h.size;
    --size_;
    if (h.size == 0) {
      hosts_.erase(hit);
    } else {
      order_.emplace(h.pass, h.seq, host_name);
    }
    return std::move(e.item);
  }

  // Removes every request for which pred(item) holds; returns how many.
  // The others keep their order.
  template <class Pred>
  std::size_t remove_if(Pred pred) {
    std::size_t removed = 0;
    for (auto hit = hosts_.begin(); hit != hosts_.end();) {
      Host& h = hit->second;
      for (auto cit = h.connections.begin(); cit != h.connections.end();) {
        Connection& c = cit->second;
        const std::size_t n = std::erase_if(c.items, [&](const Entry& e) { return pred(e.item); });
        h.size -= n;
        size_ -= n;
        removed += n;
        if (c.items.empty()) {
          h.order.erase({c.pass, c.seq, cit->first});
          cit = h.connections.erase(cit);
        } else {
          ++cit;
        }
      }
      if (h.size == 0) {
        order_.erase({h.pass, h.seq, hit->first});
        hit = hosts_.erase(hit);
      } else {
        ++hit;
      }
    }
    return removed;
  }

  // Calls f(item) for every queued request (in no particular order).
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [hn, h] : hosts_) {
      for (const auto& [cn, c] : h.connections) {
        for (const Entry& e : c.items) f(e.item);
      }
    }
  }

 private:
  struct Entry {
    T item;
    std::uint64_t cost = 1;
  };
  // (pass, activation sequence, name): the order in which children go.
  using Tag = std::tuple<std::uint64_t, std::uint64_t, std::string>;
  struct Connection {
    std::deque<Entry> items;
    std::uint64_t pass = 0;
    std::uint64_t seq = 0;
  };
  struct Host {
    std::map<std::string, Connection, std::less<>> connections;
    std::set<Tag> order;      // connections with requests
    std::uint64_t clock = 0;  // pass the connection served last reached
    std::uint64_t pass = 0;
    std::uint64_t seq = 0;
    std::size_t size = 0;
  };

  std::map<std::string, Host, std::less<>> hosts_;
  std::set<Tag> order_;      // hosts with requests
  std::uint64_t clock_ = 0;  // pass the host served last reached
  std::uint64_t next_seq_ = 0;
  std::size_t size_ = 0;
};

}  // namespace acheron::charon
