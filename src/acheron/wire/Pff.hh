// PANOSETI File Format (PFF): frames of a JSON header block followed by an
// image block ('*' + raw little-endian pixels), the fixed-width headers the
// DAQ writes, PFF file and run-directory names, and White-Rabbit time
// reconstruction (shared/specs/daqdata.md section 4). Pure: bytes in, bytes
// out, no files or sockets except the small file helpers at the end.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "acheron/core/Result.hh"

namespace acheron::wire::pff {

// The four image data products.
enum class Product : std::uint8_t { img16, img8, ph256, ph1024 };
inline constexpr std::array<Product, 4> kProducts{Product::img16, Product::img8, Product::ph256,
                                                  Product::ph1024};

// PanoImage.Type values on the DaqData wire.
enum class ImageType : std::uint8_t { undefined = 0, pulse_height = 1, movie = 2 };

struct ProductInfo {
  Product product;
  std::string_view name;  // "img16"
  ImageType type;
  std::uint32_t side;             // shape is [side, side]
  std::uint32_t bytes_per_pixel;  // 1 or 2
  std::size_t pixels() const noexcept { return std::size_t{side} * side; }
  std::size_t image_bytes() const noexcept { return pixels() * bytes_per_pixel; }
  bool is_pulse_height() const noexcept { return type == ImageType::pulse_height; }
};

const ProductInfo& info(Product product);
std::optional<Product> product_from_name(std::string_view name);
// The product of a (type, shape, bytes per pixel) triple; nullopt for any
// combination outside the table (such images are not served).
std::optional<Product> product_from_props(ImageType type, std::span<const std::uint32_t> shape,
                                          int bytes_per_pixel);

// Offset just past the first "\n\n" of data (the header block's length, '{'
// included), or an error if data does not start with '{' or holds no "\n\n"
// within max_header bytes.
Result<std::size_t> header_length(std::span<const std::byte> data, std::size_t max_header = 4096);

// One frame inside a buffer: views, no copy.
struct FrameView {
  std::string_view header;            // the JSON block including its trailing "\n\n"
  std::span<const std::byte> pixels;  // bytes_per_image raw bytes after '*'
};

// The frame layout of a file: header length (learned from the first frame)
// plus image bytes.
struct Layout {
  std::size_t header_bytes = 0;
  std::size_t image_bytes = 0;
  std::size_t frame_bytes() const noexcept { return header_bytes + 1 + image_bytes; }
};

// Learns the layout from the first frame in data.
Result<Layout> learn_layout(std::span<const std::byte> data, std::size_t image_bytes);
// Number of complete frames in size bytes of a file with this layout.
inline std::size_t frame_count(std::size_t size, const Layout& layout) {
  return layout.frame_bytes() == 0 ? 0 : size / layout.frame_bytes();
}
// The frame at data[0..frame_bytes): checks '{' at the start, "\n\n" at the
// end of the header and '*' after it.
Result<FrameView> frame_at(std::span<const std::byte> data, const Layout& layout);
// Every complete frame of a buffer holding a whole file (stops at a partial
// tail; an error if a frame is malformed).
Result<std::vector<FrameView>> split_frames(std::span<const std::byte> data,
                                            std::size_t image_bytes);
// JSON-only files (housekeeping hk.pff): each complete "{...}\n\n" block; a
// truncated last block is left out.
std::vector<std::string_view> split_json_blocks(std::string_view data);

// Appends one frame: header (must end in "\n\n"), '*', pixels.
void append_frame(std::string& out, std::string_view header, std::span<const std::byte> pixels);

// Per-quabo packet stamps of a frame header.
struct QuaboStamp {
  std::uint32_t pkt_num = 0;   // 16-bit packet counter
  std::uint32_t pkt_tai = 0;   // low 10 bits of White-Rabbit TAI seconds
  std::uint32_t pkt_nsec = 0;  // White-Rabbit nanoseconds
  std::int64_t tv_sec = 0;     // host clock at arrival
  std::uint32_t tv_usec = 0;
};

// The 491-byte grouped header of img16/img8/ph1024 (quabo_0..quabo_3).
std::string format_grouped_header(const std::array<QuaboStamp, 4>& quabos);
// The 123-byte ungrouped ph256 header.
std::string format_ph256_header(unsigned quabo_num, const QuaboStamp& stamp);
// A header for product with every quabo stamped alike.
std::string format_header(Product product, const QuaboStamp& stamp, unsigned quabo_num = 0);
// A consistent stamp for a host time (pkt_tai = (tv_sec + 37) mod 1024).
QuaboStamp stamp_for(std::int64_t unix_ns, std::uint32_t pkt_num);

// White-Rabbit time in Unix seconds from one quabo's stamps, or nullopt when
// the WR and host clocks disagree by more than a second.
struct WrTime {
  std::int64_t seconds = 0;
  std::uint32_t nanoseconds = 0;
  double as_double() const noexcept { return double(seconds) + nanoseconds * 1e-9; }
};
std::optional<WrTime> wr_to_unix(std::int64_t pkt_tai, std::int64_t pkt_nsec, std::int64_t tv_sec);

// A PFF file name "start_<t>.dp_<dp>.bpp_<n>.module_<m>.seqno_<k>.pff" and
// the upstream server's matching rules (section 4.4).
struct FileName {
  std::optional<Product> product;       // from "\.dp_([a-zA-Z0-9]+)\."
  std::string dp;                       // the raw dp value ("" when absent)
  std::optional<std::uint32_t> module;  // first "module_(\d+)" in the path
  std::uint32_t seqno = 0;              // "\.seqno_(\d+)\." (absent: 0)
};
FileName parse_file_name(std::string_view path);
// "start_2025-08-02T05:31:36Z.dp_ph256.bpp_2.module_254.seqno_0.pff".
std::string make_file_name(std::int64_t start_unix_s, Product product, std::uint32_t module,
                           std::uint32_t seqno);

// Pixel values of a frame, one uint32 per pixel, raw pattern zero-extended.
void pixels_to_u32(std::span<const std::byte> pixels, std::uint32_t bytes_per_pixel,
                   std::uint32_t* out);

}  // namespace acheron::wire::pff
