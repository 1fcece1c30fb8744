#include "acheron/remote/Call.hh"

#include <set>

namespace acheron::remote {

namespace {
thread_local CallContext* t_current = nullptr;
}  // namespace

bool CallContext::cancelled() const noexcept {
  return cancelled_.load(std::memory_order_relaxed) || Clock::now() > deadline_;
}

void CallContext::check_cancelled() const {
  if (cancelled()) {
    throw Failure(StatusCode::cancelled, "call '" + method_ + "' was cancelled by its caller");
  }
}

bool CallContext::progress(Value value) {
  if (cancelled() || !sink_) return false;
  return sink_(std::move(value));
}

CallContext* current_call() noexcept {
  return t_current;
}

CurrentCall::CurrentCall(CallContext* context) noexcept : previous_(t_current) {
  t_current = context;
}

CurrentCall::~CurrentCall() {
  t_current = previous_;
}

Args::Args(Json positional, Json keyword, std::vector<Array> arrays)
    : positional_(std::move(positional)), keyword_(std::move(keyword)), arrays_(std::move(arrays)) {
  if (positional_.is_null()) positional_ = Json::array();
  if (keyword_.is_null()) keyword_ = Json::object();
}

const Json* Args::find(std::size_t i, std::string_view name) const {
  if (i < positional_.size()) return &positional_[i];
  if (!name.empty()) {
    auto it = keyword_.find(name);
    if (it != keyword_.end()) return &*it;
  }
  return nullptr;
}

const Array& Args::array(const Json& ref) const {
  auto i = array_ref_index(ref);
  if (!i || *i >= arrays_.size()) throw_bad_argument("expected an array argument");
  return arrays_[*i];
}

void check_args(const std::string& call, const CallInfo& info, const Args& args) {
  if (info.variadic) return;
  const auto& params = info.params;
  if (args.size() > params.size()) {
    throw_bad_argument(call + "() takes " + std::to_string(params.size()) +
                       " positional arguments but " + std::to_string(args.size()) + " were given");
  }
  for (auto it = args.keyword().begin(); it != args.keyword().end(); ++it) {
    std::size_t k = 0;
    while (k < params.size() && params[k].name != it.key()) ++k;
    if (k == params.size()) {
      throw_bad_argument(call + "() got an unexpected keyword argument '" + it.key() + "'");
    }
    if (k < args.size()) {
      throw_bad_argument(call + "() got multiple values for argument '" + it.key() + "'");
    }
  }
  for (std::size_t i = args.size(); i < params.size(); ++i) {
    if (!params[i].default_value && !args.keyword().contains(params[i].name)) {
      throw_bad_argument(call + "() missing required argument '" + params[i].name + "'");
    }
  }
}

}  // namespace acheron::remote
