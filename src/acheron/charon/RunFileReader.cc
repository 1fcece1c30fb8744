// Reading a run file back (RunFileReader.hh): versions 1 and 2.
#include "acheron/charon/RunFileReader.hh"

#include <hdf5.h>

#include <cstdlib>

#include "acheron/core/Error.hh"

namespace acheron::charon {

namespace {

// Reading: every failure names the file and what is missing.
[[noreturn]] void read_fail(const std::filesystem::path& p, const std::string& what) {
  throw SetupError("cannot read run file '" + p.string() + "': " + what +
                   " (not a complete acheron run file?) check the path; files still being "
                   "written end in .partial");
}

bool has_link(hid_t loc, const char* name) {
  return H5Lexists(loc, name, H5P_DEFAULT) > 0;
}

template <class T>
std::vector<T> read_all(hid_t loc, const char* name, hid_t type, const std::filesystem::path& p) {
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  if (ds < 0) read_fail(p, std::string("dataset ") + name + " is missing");
  hid_t space = H5Dget_space(ds);
  const int rank = H5Sget_simple_extent_ndims(space);
  hsize_t n = 0;
  if (rank == 1) H5Sget_simple_extent_dims(space, &n, nullptr);
  H5Sclose(space);
  if (rank != 1) {
    H5Dclose(ds);
    read_fail(p, std::string("dataset ") + name + " is not one-dimensional");
  }
  std::vector<T> out(n);
  const herr_t rc = n ? H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) : 0;
  H5Dclose(ds);
  if (rc < 0) read_fail(p, std::string("dataset ") + name + " cannot be read");
  return out;
}

std::string read_string_attribute(hid_t loc, const char* name) {
  if (H5Aexists(loc, name) <= 0) return {};
  hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  char* text = nullptr;
  std::string out;
  if (H5Aread(attr, type, &text) >= 0 && text) {
    out = text;
    H5free_memory(text);
  }
  H5Tclose(type);
  H5Aclose(attr);
  return out;
}

// A slice [b, e) of a column as its own vector.
template <class T>
std::vector<T> slice(const std::vector<T>& v, std::uint64_t b, std::uint64_t e) {
  return std::vector<T>(v.begin() + static_cast<std::ptrdiff_t>(b),
                        v.begin() + static_cast<std::ptrdiff_t>(e));
}

}  // namespace

RunContents read_run_file(const std::filesystem::path& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) read_fail(path, "not an HDF5 file, or not readable");
  struct Closer {
    hid_t f;
    ~Closer() { H5Fclose(f); }
  } closer{file};
  RunContents run;
  if (read_string_attribute(file, "format") != "acheron.charon.run") {
    read_fail(path, "its format attribute is not acheron.charon.run");
  }
  const std::string version = read_string_attribute(file, "version");
  run.version = version.empty() ? 0 : std::atoi(version.c_str());
  if (run.version < 1 || run.version > kRunFileVersion) {
    read_fail(path, "version '" + version + "' is not one this reader knows (1 to " +
                        std::to_string(kRunFileVersion) + ")");
  }
  run.run_name = read_string_attribute(file, "run_name");
  if (!has_link(file, "detinfo") || !has_link(file, "output")) {
    read_fail(path, "group /detinfo or /output is missing");
  }
  hid_t det = H5Gopen2(file, "detinfo", H5P_DEFAULT);
  run.detector.x = read_all<float>(det, "pmt_x", H5T_NATIVE_FLOAT, path);
  run.detector.y = read_all<float>(det, "pmt_y", H5T_NATIVE_FLOAT, path);
  run.detector.z = read_all<float>(det, "pmt_z", H5T_NATIVE_FLOAT, path);
  run.detector.type = read_all<std::int32_t>(det, "pmt_type", H5T_NATIVE_INT32, path);
  H5Gclose(det);

  hid_t out = H5Gopen2(file, "output", H5P_DEFAULT);
  struct GroupCloser {
    hid_t g;
    ~GroupCloser() { H5Gclose(g); }
  } out_closer{out};
  const auto ids = read_all<std::uint32_t>(out, "event_id", H5T_NATIVE_UINT32, path);
  const auto offsets = read_all<std::uint64_t>(out, "hit_offset", H5T_NATIVE_UINT64, path);
  const auto channel = read_all<std::uint32_t>(out, "channel_id", H5T_NATIVE_UINT32, path);
  const auto flag = read_all<std::uint32_t>(out, "flag", H5T_NATIVE_UINT32, path);
  std::map<std::string, std::vector<float>> f;
  for (const char* name : {"time", "wavelength", "u", "v", "w", "pol_x", "pol_y", "pol_z"}) {
    f[name] = read_all<float>(out, name, H5T_NATIVE_FLOAT, path);
  }
  const std::size_t h = channel.size();
  if (offsets.size() != ids.size() + 1 || offsets.back() != h) {
    read_fail(path, "hit_offset does not match event_id and channel_id");
  }
  for (const auto& [name, v] : f) {
    if (v.size() != h) read_fail(path, "dataset " + name + " differs in length from channel_id");
  }
  if (flag.size() != h) read_fail(path, "dataset flag differs in length from channel_id");
  // Version 1 files have no step data: their events come back without steps.
  const bool steps = has_link(out, "has_steps");
  std::vector<std::uint8_t> has_steps, history;
  std::map<std::string, std::vector<float>> pos;
  std::map<std::string, std::vector<std::uint32_t>> counts;
  std::vector<std::uint64_t> sequence;
  if (steps) {
    has_steps = read_all<std::uint8_t>(out, "has_steps", H5T_NATIVE_UINT8, path);
    history = read_all<std::uint8_t>(out, "step_history", H5T_NATIVE_UINT8, path);
    for (const char* name : {"pos_x", "pos_y", "pos_z"}) {
      pos[name] = read_all<float>(out, name, H5T_NATIVE_FLOAT, path);
    }
    for (const char* name : {"boundaries", "scatters", "reemissions", "steps"}) {
      counts[name] = read_all<std::uint32_t>(out, name, H5T_NATIVE_UINT32, path);
    }
    sequence = read_all<std::uint64_t>(out, "sequence", H5T_NATIVE_UINT64, path);
    bool ok =
        has_steps.size() == ids.size() && history.size() == ids.size() && sequence.size() == h;
    for (const auto& [name, v] : pos) ok = ok && v.size() == h;
    for (const auto& [name, v] : counts) ok = ok && v.size() == h;
    if (!ok) read_fail(path, "the step datasets differ in length from the hits or events");
  }
  run.events.reserve(ids.size());
  for (std::size_t e = 0; e < ids.size(); ++e) {
    const std::uint64_t b = offsets[e], end = offsets[e + 1];
    if (b > end || end > h) read_fail(path, "hit_offset is not ascending");
    wire::charon::Hits hits;
    hits.event_id = ids[e];
    hits.channel = slice(channel, b, end);
    hits.flags = slice(flag, b, end);
    hits.time = slice(f["time"], b, end);
    hits.wavelength = slice(f["wavelength"], b, end);
    hits.dir_x = slice(f["u"], b, end);
    hits.dir_y = slice(f["v"], b, end);
    hits.dir_z = slice(f["w"], b, end);
    hits.pol_x = slice(f["pol_x"], b, end);
    hits.pol_y = slice(f["pol_y"], b, end);
    hits.pol_z = slice(f["pol_z"], b, end);
    if (steps && has_steps[e]) {
      auto& s = hits.steps.emplace();
      s.history_length = history[e];
      s.pos_x = slice(pos["pos_x"], b, end);
      s.pos_y = slice(pos["pos_y"], b, end);
      s.pos_z = slice(pos["pos_z"], b, end);
      s.boundaries = slice(counts["boundaries"], b, end);
      s.scatters = slice(counts["scatters"], b, end);
      s.reemissions = slice(counts["reemissions"], b, end);
      s.steps = slice(counts["steps"], b, end);
      s.sequence = slice(sequence, b, end);
    }
    run.events.push_back(std::move(hits));
  }
  return run;
}

}  // namespace acheron::charon
