// xos framing: protocol names, v1/v2 frame decoding (stream and single)
// and encoding; the messages in the frames are in XosMessages.cc.
#include "acheron/wire/Xos.hh"
#include "acheron/wire/XosInternal.hh"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace acheron::wire::xos {

std::string_view to_string(Protocol p) {
  return p == Protocol::v1 ? "xos1" : "xos2";
}

std::string_view to_string(DeviceType t) {
  switch (t) {
    case DeviceType::real_motor:
      return "real_motor";
    case DeviceType::pseudo_motor:
      return "pseudo_motor";
    case DeviceType::shutter:
      return "shutter";
    case DeviceType::ion_chamber:
      return "ion_chamber";
    case DeviceType::encoder:
      return "encoder";
    case DeviceType::string:
      return "string";
    case DeviceType::operation:
      return "operation";
    case DeviceType::object:
      return "object";
  }
  return "unknown";
}

// ---------------------------------------------------------------- decoding

bool looks_like_v2_header(std::string_view head) {
  for (char c : head) {
    if (is_blank(c)) continue;
    return is_digit(c);
  }
  return false;
}

Result<V2Header> parse_v2_header(std::string_view header, const Limits& limits) {
  std::vector<std::string_view> numbers;
  std::size_t i = 0;
  while (i < header.size()) {
    const char c = header[i];
    if (is_blank(c) || c == '\t') {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < header.size() && !is_blank(header[j]) && header[j] != '\t') ++j;
    numbers.push_back(header.substr(i, j - i));
    i = j;
  }
  if (numbers.empty() || numbers.size() > 2) {
    return fail<V2Header>("xos2 header needs one or two sizes, found " +
                          std::to_string(numbers.size()) + " fields");
  }
  std::size_t values[2] = {0, 0};
  for (std::size_t k = 0; k < numbers.size(); ++k) {
    const auto n = numbers[k];
    if (n.size() > 15 || !std::all_of(n.begin(), n.end(), is_digit)) {
      return fail<V2Header>("xos2 header field '" + std::string(n.substr(0, 20)) +
                            "' is not a non-negative decimal size");
    }
    std::size_t v = 0;
    for (char c : n) v = v * 10 + static_cast<std::size_t>(c - '0');
    values[k] = v;
  }
  if (values[0] > limits.max_text) {
    return fail<V2Header>("xos2 text size " + std::to_string(values[0]) + " exceeds the limit " +
                          std::to_string(limits.max_text));
  }
  if (values[1] > limits.max_binary) {
    return fail<V2Header>("xos2 binary size " + std::to_string(values[1]) + " exceeds the limit " +
                          std::to_string(limits.max_binary));
  }
  return V2Header{values[0], values[1]};
}

std::string_view clean_text(std::string_view raw) {
  if (auto nul = raw.find('\0'); nul != std::string_view::npos) raw = raw.substr(0, nul);
  while (!raw.empty() && is_space(raw.back())) raw.remove_suffix(1);
  return raw;
}

std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    std::size_t j = i;
    while (j < text.size() && !is_space(text[j])) ++j;
    if (j > i) out.emplace_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

void StreamDecoder::feed(const char* data, std::size_t size) {
  if (failed_ || size == 0) return;
  buf_.append(data, size);
}

void StreamDecoder::reset() {
  buf_.clear();
  pos_ = 0;
  skip_binary_ = 0;
  pending_.reset();
  failed_ = false;
  error_.clear();
}

void StreamDecoder::compact() {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 65536 && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

Result<std::optional<Frame>> StreamDecoder::next() {
  using R = Result<std::optional<Frame>>;
  if (failed_) return R::failure(StatusCode::invalid_argument, error_);
  if (skip_binary_ > 0) {
    const std::size_t n = std::min(skip_binary_, buf_.size() - pos_);
    pos_ += n;
    skip_binary_ -= n;
    compact();
    if (skip_binary_ > 0) return std::optional<Frame>();
    auto f = std::move(pending_);
    pending_.reset();
    return f;
  }
  const std::size_t avail = buf_.size() - pos_;
  if (avail < kV2HeaderSize) return std::optional<Frame>();
  const std::string_view head(buf_.data() + pos_, kV2HeaderSize);
  if (looks_like_v2_header(head)) {
    auto hdr = parse_v2_header(head, limits_);
    if (!hdr) {
      failed_ = true;
      error_ = hdr.error().message;
      return R::failure(StatusCode::invalid_argument, error_);
    }
    if (avail < kV2HeaderSize + hdr->text_size) return std::optional<Frame>();
    Frame f;
    f.protocol = Protocol::v2;
    f.text = std::string(
        clean_text(std::string_view(buf_.data() + pos_ + kV2HeaderSize, hdr->text_size)));
    f.binary_size = hdr->binary_size;
    pos_ += kV2HeaderSize + hdr->text_size;
    if (hdr->binary_size > 0) {
      skip_binary_ = hdr->binary_size;
      pending_ = std::move(f);
      return next();
    }
    compact();
    return std::optional<Frame>(std::move(f));
  }
  if (avail < kV1FrameSize) return std::optional<Frame>();
  Frame f;
  f.protocol = Protocol::v1;
  f.text = std::string(clean_text(std::string_view(buf_.data() + pos_, kV1FrameSize)));
  pos_ += kV1FrameSize;
  compact();
  return std::optional<Frame>(std::move(f));
}

Result<Frame> decode_one(std::string_view bytes, const Limits& limits) {
  StreamDecoder d(limits);
  d.feed(bytes);
  auto r = d.next();
  if (!r) return r.error();
  if (!*r) return fail<Frame>("incomplete xos frame (" + std::to_string(bytes.size()) + " bytes)");
  if (d.buffered() != 0) {
    return fail<Frame>(std::to_string(d.buffered()) + " bytes follow the xos frame");
  }
  return std::move(**r);
}

// ---------------------------------------------------------------- encoding

std::string join(const std::vector<std::string>& tokens) {
  std::string out;
  for (const auto& t : tokens) {
    for (const auto& piece : tokenize(t)) {
      if (!out.empty()) out += ' ';
      out += piece;
    }
  }
  return out;
}

std::string normalize(std::string_view text) {
  // NUL would end the message early on the receiving side: treat it as a space.
  std::string copy(text);
  std::replace(copy.begin(), copy.end(), '\0', ' ');
  return join(tokenize(copy));
}

Result<std::string> encode_v1(std::string_view text) {
  std::string t = normalize(text);
  if (t.size() > kV1MaxText) {
    return fail<std::string>("xos1 message of " + std::to_string(t.size()) +
                             " bytes exceeds 199 (" + t.substr(0, 40) + "...)");
  }
  t.resize(kV1FrameSize, '\0');
  return t;
}

V1Fit fit_v1(std::string_view text) {
  V1Fit fit;
  fit.text = normalize(text);
  fit.original_size = fit.text.size();
  if (fit.text.size() <= kV1MaxText) return fit;
  fit.truncated = true;
  // normalize() leaves single spaces between tokens: cut at the last one that
  // keeps the text within 199 bytes.
  const auto space = fit.text.rfind(' ', kV1MaxText);
  fit.text.resize(space == std::string::npos || space == 0 ? kV1MaxText : space);
  return fit;
}

std::string encode_v2(std::string_view text) {
  const std::string t = normalize(text);
  std::string out = fmt::format("{:12d} {:12d} ", t.size() + 1, 0);
  out += t;
  out += '\0';
  return out;
}

Result<std::string> encode(Protocol protocol, std::string_view text) {
  if (protocol == Protocol::v1) return encode_v1(text);
  return encode_v2(text);
}

std::string encode_v2_as(SenderVariant variant, std::string_view text) {
  const std::string t(text);  // as given: other senders do not normalise
  std::string out;
  switch (variant) {
    case SenderVariant::xos_c:
      out = fmt::format("{:12d} {:12d} ", t.size() + 1, 0);
      out += t;
      out += '\0';
      return out;
    case SenderVariant::mx:
      out = fmt::format("{:12d}{:13d}", t.size() + 1, 0);
      out += '\0';
      out += t;
      out += '\0';
      return out;
    case SenderVariant::pydhsfw:
      out = fmt::format("{:12d}{:13d} ", t.size() + 2, 0);
      out += t;
      out += " ";
      out += '\0';
      return out;
    case SenderVariant::tcl:
      out = fmt::format("{:12d} {:12d} ", t.size(), 0);
      out += t;
      return out;
    case SenderVariant::java:
      out = fmt::format("{} 0", t.size());
      out.resize(kV2HeaderSize, '\0');
      out += t;
      return out;
  }
  return encode_v2(t);
}

std::string format_motor(double v) {
  return fmt::format("{:.6f}", v);
}
std::string format_loop(double v) {
  return fmt::format("{:.5f}", v);
}
}  // namespace acheron::wire::xos
