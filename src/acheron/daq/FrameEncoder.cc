#include "acheron/daq/FrameEncoder.hh"

#include <google/protobuf/util/json_util.h>

#include <bit>
#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

namespace acheron::daq {

namespace pff = wire::pff;

namespace {

// Protobuf wire tags (field << 3 | wire type) of the messages written here.
constexpr std::uint8_t kImageType = (1 << 3) | 0;
constexpr std::uint8_t kImageHeader = (2 << 3) | 2;
constexpr std::uint8_t kImageArray = (3 << 3) | 2;
constexpr std::uint8_t kImageShape = (4 << 3) | 2;
constexpr std::uint8_t kImageBpp = (5 << 3) | 0;
constexpr std::uint8_t kImageFile = (6 << 3) | 2;
constexpr std::uint8_t kImageFrameNumber = (7 << 3) | 0;
constexpr std::uint8_t kImageModuleId = (8 << 3) | 0;
constexpr std::uint8_t kStructFields = (1 << 3) | 2;  // map<string, Value> entry
constexpr std::uint8_t kEntryKey = (1 << 3) | 2;
constexpr std::uint8_t kEntryValue = (2 << 3) | 2;
constexpr std::uint8_t kValueNumber = (2 << 3) | 1;  // double, fixed64
constexpr std::uint8_t kValueStruct = (5 << 3) | 2;
constexpr int kMaxDepth = 8;
constexpr std::size_t kMaxNodes = 4096;

std::uint8_t* put_bytes(std::uint8_t* p, std::uint8_t tag, std::string_view s) {
  *p++ = tag;
  p = put_varint(p, s.size());
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

std::size_t field_size(std::size_t body) {  // tag + length + body
  return 1 + varint_size(body) + body;
}

// A header key/value in pre-order; an object's children follow it, and
// `end` is the index just past its subtree.
struct Node {
  std::string_view key;
  double number = 0;
  bool object = false;
  std::uint32_t end = 0;
  std::size_t struct_size = 0;  // objects: their Struct's size
  std::size_t value_size = 0;   // the Value message
  std::size_t entry_size = 0;   // the map entry (key + value)
};

// Parses the DAQ header form into nodes; false for anything else.
class HeaderScanner {
 public:
  HeaderScanner(std::string_view s, std::vector<Node>* nodes) : s_(s), nodes_(nodes) {}
  bool scan() {
    nodes_->clear();
    if (!object({}, 0)) return false;
    skip();
    return pos_ == s_.size();
  }

 private:
  void skip() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(char c) {
    skip();
    if (pos_ >= s_.size() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool key(std::string_view* k) {
    if (!eat('"')) return false;
    const auto end = s_.find('"', pos_);
    if (end == std::string_view::npos) return false;
    auto raw = s_.substr(pos_, end - pos_);
    for (char ch : raw)  // printable ASCII without escapes: the bytes are the key
      if (ch < 0x20 || ch > 0x7E || ch == '\\') return false;
    *k = raw;
    pos_ = end + 1;
    return true;
  }
  bool number(double* v) {
    // A JSON number starts with '-' or a digit (from_chars alone would also
    // take "inf" and "nan", which JSON has not).
    if (pos_ >= s_.size() || !(s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')))
      return false;
    const char* begin = s_.data() + pos_;
    const char* const end = s_.data() + s_.size();
    // The DAQ writes integers: up to 15 digits are exact in a double and
    // read here directly (std::from_chars for double goes through strtod).
    const char* q = begin + (*begin == '-');
    std::uint64_t n = 0;
    const char* digits = q;
    while (q < end && *q >= '0' && *q <= '9' && q - digits < 16) n = n * 10 + unsigned(*q++ - '0');
    if (q > digits && q - digits < 16 &&
        (q == end || (*q != '.' && *q != 'e' && *q != 'E' && !(*q >= '0' && *q <= '9')))) {
      *v = *begin == '-' ? -static_cast<double>(n) : static_cast<double>(n);
      pos_ += static_cast<std::size_t>(q - begin);
      return true;
    }
    auto r = std::from_chars(begin, end, *v);
    if (r.ec != std::errc{} || r.ptr == begin) return false;
    pos_ += static_cast<std::size_t>(r.ptr - begin);
    return true;
  }
  bool object(std::string_view own_key, int depth) {
    if (depth > kMaxDepth || !eat('{') || nodes_->size() >= kMaxNodes) return false;
    const std::size_t self = nodes_->size();
    nodes_->push_back(Node{.key = own_key, .object = true});
    const std::size_t first_child = nodes_->size();
    skip();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      (*nodes_)[self].end = static_cast<std::uint32_t>(nodes_->size());
      return true;
    }
    for (;;) {
      std::string_view k;
      if (!key(&k) || !eat(':')) return false;
      // A repeated key would be one map entry in a Struct: left to the
      // general parser, whose rule for it is the reference.
      for (std::size_t i = first_child; i < nodes_->size(); i = (*nodes_)[i].end)
        if ((*nodes_)[i].key == k) return false;
      skip();
      if (pos_ >= s_.size()) return false;
      if (s_[pos_] == '{') {
        if (!object(k, depth + 1)) return false;
      } else {
        double v = 0;
        if (!number(&v) || nodes_->size() >= kMaxNodes) return false;
        nodes_->push_back(Node{.key = k, .number = v});
        nodes_->back().end = static_cast<std::uint32_t>(nodes_->size());
      }
      if (eat(',')) continue;
      if (!eat('}')) return false;
      (*nodes_)[self].end = static_cast<std::uint32_t>(nodes_->size());
      return true;
    }
  }

  std::string_view s_;
  std::vector<Node>* nodes_;
  std::size_t pos_ = 0;
};

// Message sizes bottom-up (children come after their parent).
void size_nodes(std::vector<Node>& nodes) {
  for (std::size_t i = nodes.size(); i-- > 0;) {
    auto& n = nodes[i];
    if (n.object) {
      n.struct_size = 0;
      for (std::size_t c = i + 1; c < n.end; c = nodes[c].end)
        n.struct_size += field_size(nodes[c].entry_size);
      n.value_size = field_size(n.struct_size);
    } else {
      n.value_size = 1 + 8;
    }
    n.entry_size = field_size(n.key.size()) + field_size(n.value_size);
  }
}

std::uint8_t* put_struct(std::uint8_t* p, const std::vector<Node>& nodes, std::size_t i) {
  for (std::size_t c = i + 1; c < nodes[i].end; c = nodes[c].end) {
    const auto& n = nodes[c];
    *p++ = kStructFields;
    p = put_varint(p, n.entry_size);
    p = put_bytes(p, kEntryKey, n.key);
    *p++ = kEntryValue;
    p = put_varint(p, n.value_size);
    if (n.object) {
      *p++ = kValueStruct;
      p = put_varint(p, n.struct_size);
      p = put_struct(p, nodes, c);
    } else {
      *p++ = kValueNumber;
      const auto bits = std::bit_cast<std::uint64_t>(n.number);
      for (int b = 0; b < 8; ++b) *p++ = static_cast<std::uint8_t>(bits >> (8 * b));
    }
  }
  return p;
}

// The pixels as packed varints into `out` (at least 3 bytes per pixel plus
// 4 of slack); returns the byte count. Pixels are little-endian and
// zero-extended (PH pixels travel as their raw 16-bit pattern). Each varint
// is built without branches and stored as one 4-byte word, so noisy images
// cost no mispredictions.
std::size_t put_pixels(std::uint8_t* out, const unsigned char* px, std::size_t count,
                       std::uint32_t bytes_per_pixel) {
  std::uint8_t* p = out;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint32_t v = bytes_per_pixel == 1
                                ? px[i]
                                : std::uint32_t(px[2 * i]) | (std::uint32_t(px[2 * i + 1]) << 8);
    const std::uint32_t two = v >= 0x80, three = v >= 0x4000;
    const std::uint32_t word =
        (v & 0x7F) | (two << 7) | (((v >> 7) & 0x7F) << 8) | (three << 15) | ((v >> 14) << 16);
    std::memcpy(p, &word, 4);  // little-endian hosts only (checked below)
    p += 1 + two + three;
  }
  return static_cast<std::size_t>(p - out);
}
static_assert(std::endian::native == std::endian::little);

// An uninitialised block for one response (every byte is written), handed
// to a Buffer that owns it.
std::shared_ptr<std::uint8_t[]> new_block(std::size_t size) {
  return std::make_shared_for_overwrite<std::uint8_t[]>(size);
}

Buffer adopt_block(std::shared_ptr<std::uint8_t[]> block, std::size_t size) {
  const auto* data = reinterpret_cast<const std::byte*>(block.get());
  return Buffer::adopt(std::shared_ptr<const void>(std::move(block), data), data, size);
}

}  // namespace

bool encode_frame_response(const RawFrame& frame, Buffer* out) {
  const auto& info = pff::info(frame.product);
  if (frame.pixels.size() != info.image_bytes()) return false;
  std::string_view header = frame.header;
  while (!header.empty() && (header.back() == '\n' || header.back() == ' '))
    header.remove_suffix(1);
  thread_local std::vector<Node> nodes;
  if (!HeaderScanner(header, &nodes).scan()) return false;
  size_nodes(nodes);

  thread_local std::vector<std::uint8_t> array;
  array.resize(3 * info.pixels() + 4);
  const std::size_t array_size =
      put_pixels(array.data(), reinterpret_cast<const unsigned char*>(frame.pixels.data()),
                 info.pixels(), info.bytes_per_pixel);
  const std::size_t shape_size = 2 * varint_size(info.side);
  const std::uint32_t type = info.is_pulse_height() ? 1 : 2;  // PanoImage.Type

  std::size_t image_size = 1 + varint_size(type) + field_size(nodes[0].struct_size) +
                           field_size(array_size) + field_size(shape_size) + 1 +
                           varint_size(info.bytes_per_pixel);
  if (!frame.file.empty()) image_size += field_size(frame.file.size());
  if (frame.frame_number != 0) image_size += 1 + varint_size(frame.frame_number);
  if (frame.module_id != 0) image_size += 1 + varint_size(frame.module_id);
  const std::size_t total = field_size(image_size);

  auto block = new_block(total);
  auto* const begin = block.get();
  auto* p = begin;
  *p++ = kResponsePanoImage;
  p = put_varint(p, image_size);
  *p++ = kImageType;
  p = put_varint(p, type);
  *p++ = kImageHeader;
  p = put_varint(p, nodes[0].struct_size);
  p = put_struct(p, nodes, 0);
  *p++ = kImageArray;
  p = put_varint(p, array_size);
  std::memcpy(p, array.data(), array_size);
  p += array_size;
  *p++ = kImageShape;
  p = put_varint(p, shape_size);
  p = put_varint(p, info.side);
  p = put_varint(p, info.side);
  *p++ = kImageBpp;
  p = put_varint(p, info.bytes_per_pixel);
  if (!frame.file.empty()) p = put_bytes(p, kImageFile, frame.file);
  if (frame.frame_number != 0) {
    *p++ = kImageFrameNumber;
    p = put_varint(p, frame.frame_number);
  }
  if (frame.module_id != 0) {
    *p++ = kImageModuleId;
    p = put_varint(p, frame.module_id);
  }
  if (p != begin + total) return false;  // a sizing bug: never send a corrupt message
  *out = adopt_block(std::move(block), total);
  return true;
}

bool frame_to_image(const RawFrame& frame, daqdata::PanoImage* out) {
  const auto& info = pff::info(frame.product);
  if (frame.pixels.size() != info.image_bytes()) return false;
  std::string_view header = frame.header;
  while (!header.empty() && (header.back() == '\n' || header.back() == ' '))
    header.remove_suffix(1);
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(
           google::protobuf::StringPiece(header.data(), header.size()), out->mutable_header(),
           options)
           .ok())
    return false;
  out->set_type(info.is_pulse_height() ? daqdata::PanoImage::PULSE_HEIGHT
                                       : daqdata::PanoImage::MOVIE);
  out->add_shape(info.side);
  out->add_shape(info.side);
  out->set_bytes_per_pixel(static_cast<int>(info.bytes_per_pixel));
  auto* array = out->mutable_image_array();
  array->Resize(static_cast<int>(info.pixels()), 0);
  pff::pixels_to_u32({reinterpret_cast<const std::byte*>(frame.pixels.data()), frame.pixels.size()},
                     info.bytes_per_pixel, array->mutable_data());
  out->set_file(frame.file);
  out->set_frame_number(frame.frame_number);
  out->set_module_id(frame.module_id);
  return true;
}

Buffer encode_response(const daqdata::PanoImage& image) {
  // StreamImagesResponse{pano_image = 4}: the tag, the length, the image.
  const std::size_t body = image.ByteSizeLong();
  const std::size_t total = 1 + varint_size(body) + body;
  auto block = new_block(total);
  auto* p = block.get();
  *p++ = kResponsePanoImage;
  p = put_varint(p, body);
  image.SerializeWithCachedSizesToArray(p);
  return adopt_block(std::move(block), total);
}

std::optional<EncodedFrame> encode_frame(const RawFrame& frame) {
  const bool ph = pff::info(frame.product).is_pulse_height();
  // The DAQ's own headers are written straight to the wire form; any other
  // JSON goes through protobuf's parser and messages.
  Buffer bytes;
  if (encode_frame_response(frame, &bytes))
    return EncodedFrame{std::move(bytes), frame.module_id, ph};
  daqdata::PanoImage image;
  if (!frame_to_image(frame, &image)) return std::nullopt;
  return EncodedFrame{encode_response(image), frame.module_id, ph};
}

std::optional<EncodedFrame> encode_upload(const daqdata::PanoImage& image) {
  std::vector<std::uint32_t> shape(image.shape().begin(), image.shape().end());
  // The wire's type is any int32: checked before the cast to the 8-bit
  // ImageType, which would turn 258 into MOVIE.
  auto product = daqdata::PanoImage::Type_IsValid(image.type())
                     ? pff::product_from_props(static_cast<pff::ImageType>(image.type()), shape,
                                               image.bytes_per_pixel())
                     : std::nullopt;
  if (!product ||
      static_cast<std::size_t>(image.image_array_size()) != pff::info(*product).pixels())
    return std::nullopt;
  return EncodedFrame{encode_response(image), image.module_id(),
                      image.type() == daqdata::PanoImage::PULSE_HEIGHT};
}

PushResult push_upload(ImageStore& store, const daqdata::PanoImage& image) {
  auto encoded = encode_upload(image);
  if (!encoded) {
    store.count_rejected();
    return PushResult::rejected;
  }
  return store.push(std::move(*encoded));
}

}  // namespace acheron::daq
