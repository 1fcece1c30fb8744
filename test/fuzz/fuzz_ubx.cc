// Fuzz target: the UBX stream parser and every typed decoder must never crash
// on device input; frames it returns are valid, typed payloads that decode
// re-encode to the same bytes, and the field dictionary always serialises.
#include <cstdlib>

#include "acheron/wire/Ubx.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace acheron::wire::ubx;
  const ByteSpan input(data, size);
  (void)Frame::from_bytes(input);
  // The first byte picks the read size, so split reads are covered too.
  const std::size_t chunk = size > 0 ? 1 + data[0] % 64 : 1;
  StreamParser parser(1024);
  for (std::size_t off = 0; off < size; off += chunk) {
    parser.feed(input.subspan(off, std::min(chunk, size - off)));
    while (auto f = parser.next()) {
      if (!Frame::from_bytes(f->bytes()).ok()) std::abort();
      const MessageId id = f->message_id();
      const ByteSpan p = f->payload();
      if (auto m = decode_tim_tp(p); m && id == kTimTp && encode_tim_tp(*m) != f->bytes())
        std::abort();
      if (auto m = decode_nav_timeutc(p);
          m && id == kNavTimeUtc && encode_nav_timeutc(*m) != f->bytes()) {
        std::abort();
      }
      if (auto m = decode_sec_uniqid(p);
          m && id == kSecUniqid && encode_sec_uniqid(*m) != f->bytes()) {
        std::abort();
      }
      if (auto m = decode_ack(id, p); m && encode_ack(*m) != f->bytes()) std::abort();
      if (auto m = decode_cfg_valset(p);
          m && id == kCfgValset && encode_cfg_valset(*m) != f->bytes() && p[3] == 0) {
        std::abort();
      }
      if (auto m = decode_cfg_valget_reply(p);
          m && id == kCfgValget && encode_cfg_valget_reply(*m) != f->bytes()) {
        std::abort();
      }
      (void)decode_cfg_valget_poll(p);
      if (auto m = decode_mon_ver(p)) (void)m->model();
      (void)parsed_fields(*f).dump();
    }
  }
  // Dictionaries of arbitrary payloads under each typed identity.
  if (size >= 1) {
    static constexpr MessageId ids[] = {kTimTp,  kNavTimeUtc, kMonVer,   kSecUniqid,
                                        kAckAck, kCfgValget,  kCfgValset};
    const MessageId id = ids[data[0] % 7];
    auto f = Frame::from_bytes(
        encode_frame(id, input.subspan(1, std::min<std::size_t>(size - 1, 2048))));
    if (!f.ok()) std::abort();
    (void)parsed_fields(*f).dump();
  }
  return 0;
}
