#include "acheron/wire/Pff.hh"

#include <fmt/format.h>

#include <charconv>
#include <cstring>
#include <ctime>

namespace acheron::wire::pff {

namespace {

constexpr std::array<ProductInfo, 4> kInfo{{
    {Product::img16, "img16", ImageType::movie, 32, 2},
    {Product::img8, "img8", ImageType::movie, 32, 1},
    {Product::ph256, "ph256", ImageType::pulse_height, 16, 2},
    {Product::ph1024, "ph1024", ImageType::pulse_height, 32, 2},
}};

std::string_view as_chars(std::span<const std::byte> data) {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Digits after the first occurrence of key (search semantics) followed by
// `terminator` when terminator != 0.
std::optional<std::uint32_t> number_after(std::string_view s, std::string_view key,
                                          char terminator) {
  for (std::size_t pos = s.find(key); pos != std::string_view::npos; pos = s.find(key, pos + 1)) {
    std::size_t i = pos + key.size();
    std::size_t j = i;
    while (j < s.size() && is_digit(s[j])) ++j;
    if (j == i) continue;
    if (terminator != 0 && (j >= s.size() || s[j] != terminator)) continue;
    std::uint64_t v = 0;
    for (std::size_t k = i; k < j && v <= 0xFFFFFFFFull; ++k) v = v * 10 + (s[k] - '0');
    if (v > 0xFFFFFFFFull) continue;
    return static_cast<std::uint32_t>(v);
  }
  return std::nullopt;
}

}  // namespace

const ProductInfo& info(Product product) {
  return kInfo[static_cast<std::size_t>(product)];
}

std::optional<Product> product_from_name(std::string_view name) {
  for (const auto& i : kInfo)
    if (i.name == name) return i.product;
  return std::nullopt;
}

std::optional<Product> product_from_props(ImageType type, std::span<const std::uint32_t> shape,
                                          int bytes_per_pixel) {
  if (shape.size() != 2 || shape[0] != shape[1]) return std::nullopt;
  for (const auto& i : kInfo)
    if (i.type == type && i.side == shape[0] && int(i.bytes_per_pixel) == bytes_per_pixel)
      return i.product;
  return std::nullopt;
}

Result<std::size_t> header_length(std::span<const std::byte> data, std::size_t max_header) {
  auto s = as_chars(data);
  if (s.empty()) return Result<std::size_t>::failure(StatusCode::out_of_range, "empty PFF data");
  if (s[0] != '{')
    return Result<std::size_t>::failure(StatusCode::invalid_argument,
                                        "PFF frame does not start with '{'");
  auto end = s.substr(0, std::min(s.size(), max_header)).find("\n\n");
  if (end == std::string_view::npos)
    return Result<std::size_t>::failure(
        s.size() < max_header ? StatusCode::out_of_range : StatusCode::invalid_argument,
        "PFF header has no terminating blank line");
  return end + 2;
}

Result<Layout> learn_layout(std::span<const std::byte> data, std::size_t image_bytes) {
  auto h = header_length(data);
  if (!h) return h.error();
  return Layout{*h, image_bytes};
}

Result<FrameView> frame_at(std::span<const std::byte> data, const Layout& layout) {
  if (layout.header_bytes < 3)
    return Result<FrameView>::failure(StatusCode::invalid_argument, "PFF layout has no header");
  if (data.size() < layout.frame_bytes())
    return Result<FrameView>::failure(StatusCode::out_of_range, "PFF frame is incomplete");
  auto s = as_chars(data);
  if (s[0] != '{' || s[layout.header_bytes - 2] != '\n' || s[layout.header_bytes - 1] != '\n')
    return Result<FrameView>::failure(StatusCode::invalid_argument,
                                      "PFF header does not match the learned length");
  if (s[layout.header_bytes] != '*')
    return Result<FrameView>::failure(StatusCode::invalid_argument,
                                      "PFF image block does not start with '*'");
  return FrameView{s.substr(0, layout.header_bytes),
                   data.subspan(layout.header_bytes + 1, layout.image_bytes)};
}

Result<std::vector<FrameView>> split_frames(std::span<const std::byte> data,
                                            std::size_t image_bytes) {
  std::vector<FrameView> frames;
  if (data.empty()) return frames;
  auto layout = learn_layout(data, image_bytes);
  if (!layout) return layout.error();
  const std::size_t n = frame_count(data.size(), *layout);
  frames.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto f = frame_at(data.subspan(i * layout->frame_bytes()), *layout);
    if (!f)
      return Result<std::vector<FrameView>>::failure(
          f.error().code, fmt::format("frame {}: {}", i, f.error().message));
    frames.push_back(*f);
  }
  return frames;
}

std::vector<std::string_view> split_json_blocks(std::string_view data) {
  std::vector<std::string_view> blocks;
  std::size_t pos = 0;
  while (pos < data.size()) {
    while (pos < data.size() && (data[pos] == '\n' || data[pos] == ' ')) ++pos;
    if (pos >= data.size() || data[pos] != '{') break;
    auto end = data.find("\n\n", pos);
    if (end == std::string_view::npos) break;  // truncated record
    blocks.push_back(data.substr(pos, end - pos));
    pos = end + 2;
  }
  return blocks;
}

void append_frame(std::string& out, std::string_view header, std::span<const std::byte> pixels) {
  out.reserve(out.size() + header.size() + 1 + pixels.size());
  out.append(header);
  out.push_back('*');
  out.append(reinterpret_cast<const char*>(pixels.data()), pixels.size());
}

namespace {
std::string quabo_fields(const QuaboStamp& q) {
  return fmt::format(
      "\"pkt_num\": {:>10}, \"pkt_tai\": {:>4}, \"pkt_nsec\": {:>9}, \"tv_sec\": {:>10}, "
      "\"tv_usec\": {:>6}}}",
      q.pkt_num, q.pkt_tai, std::min<std::uint32_t>(q.pkt_nsec, 999999999u), q.tv_sec, q.tv_usec);
}
}  // namespace

std::string format_grouped_header(const std::array<QuaboStamp, 4>& quabos) {
  std::string s = "{\n";
  for (int i = 0; i < 4; ++i) {
    s += fmt::format("   \"quabo_{}\": {{ {}", i, quabo_fields(quabos[i]));
    if (i < 3) s += ", ";
    s += '\n';
  }
  s += "}\n\n";
  return s;
}

std::string format_ph256_header(unsigned quabo_num, const QuaboStamp& stamp) {
  return fmt::format("{{ \"quabo_num\": {:>1}, {}\n\n", quabo_num % 10, quabo_fields(stamp));
}

std::string format_header(Product product, const QuaboStamp& stamp, unsigned quabo_num) {
  if (product == Product::ph256) return format_ph256_header(quabo_num, stamp);
  return format_grouped_header({stamp, stamp, stamp, stamp});
}

QuaboStamp stamp_for(std::int64_t unix_ns, std::uint32_t pkt_num) {
  QuaboStamp q;
  q.tv_sec = unix_ns / 1'000'000'000;
  const auto ns = static_cast<std::uint32_t>(unix_ns % 1'000'000'000);
  q.tv_usec = ns / 1000;
  q.pkt_nsec = ns;
  q.pkt_tai = static_cast<std::uint32_t>((q.tv_sec + 37) % 1024);
  q.pkt_num = pkt_num & 0xFFFFu;
  return q;
}

std::optional<WrTime> wr_to_unix(std::int64_t pkt_tai, std::int64_t pkt_nsec, std::int64_t tv_sec) {
  auto mod1024 = [](std::int64_t v) { return ((v % 1024) + 1024) % 1024; };
  if (tv_sec < -(std::int64_t{1} << 62) || tv_sec > (std::int64_t{1} << 62)) return std::nullopt;
  const std::int64_t d = mod1024(mod1024(tv_sec) - mod1024(pkt_tai) + 37);
  std::int64_t sec = 0;
  if (d == 0)
    sec = tv_sec;
  else if (d == 1)
    sec = tv_sec - 1;
  else if (d == 1023)
    sec = tv_sec + 1;
  else
    return std::nullopt;
  if (pkt_nsec < 0 || pkt_nsec > 999'999'999) return std::nullopt;
  return WrTime{sec, static_cast<std::uint32_t>(pkt_nsec)};
}

FileName parse_file_name(std::string_view path) {
  FileName f;
  const std::string_view base =
      path.substr(path.rfind('/') == std::string_view::npos ? 0 : path.rfind('/') + 1);
  for (std::size_t pos = base.find(".dp_"); pos != std::string_view::npos;
       pos = base.find(".dp_", pos + 1)) {
    std::size_t i = pos + 4, j = i;
    while (j < base.size() && is_alnum(base[j])) ++j;
    if (j > i && j < base.size() && base[j] == '.') {
      f.dp = std::string(base.substr(i, j - i));
      f.product = product_from_name(f.dp);
      break;
    }
  }
  f.seqno = number_after(base, ".seqno_", '.').value_or(0);
  f.module = number_after(path, "module_", 0);
  return f;
}

std::string make_file_name(std::int64_t start_unix_s, Product product, std::uint32_t module,
                           std::uint32_t seqno) {
  std::time_t t = static_cast<std::time_t>(start_unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const auto& i = info(product);
  return fmt::format("start_{}.dp_{}.bpp_{}.module_{}.seqno_{}.pff", when, i.name,
                     i.bytes_per_pixel, module, seqno);
}

void pixels_to_u32(std::span<const std::byte> pixels, std::uint32_t bytes_per_pixel,
                   std::uint32_t* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(pixels.data());
  if (bytes_per_pixel == 1) {
    for (std::size_t i = 0; i < pixels.size(); ++i) out[i] = p[i];
  } else {
    const std::size_t n = pixels.size() / 2;
    for (std::size_t i = 0; i < n; ++i)
      out[i] = std::uint32_t(p[2 * i]) | (std::uint32_t(p[2 * i + 1]) << 8);
  }
}

}  // namespace acheron::wire::pff
