#include "acheron/charon/RunFile.hh"

#include <hdf5.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>

#include "acheron/core/Error.hh"
#include "acheron/core/Log.hh"

namespace acheron::charon {
namespace {

// Elements per chunk of every extendible dataset.
constexpr hsize_t kChunk = 65536;

// Every HDF5 call is checked; errors become SetupError naming the file.
[[noreturn]] void fail(const std::filesystem::path& p, const std::string& what) {
  throw SetupError("HDF5 error writing '" + p.string() + "': " + what +
                   " (disk full or directory not writable?) check --outdir");
}

hid_t make_dataset(hid_t loc, const char* name, hid_t type, const std::filesystem::path& p) {
  const hsize_t dims[1] = {0};
  const hsize_t maxdims[1] = {H5S_UNLIMITED};
  const hsize_t chunk[1] = {kChunk};
  hid_t space = H5Screate_simple(1, dims, maxdims);
  hid_t props = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(props, 1, chunk);
  hid_t ds = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, props, H5P_DEFAULT);
  H5Pclose(props);
  H5Sclose(space);
  if (ds < 0) fail(p, std::string("cannot create dataset ") + name);
  return ds;
}

void append_values(hid_t ds, hid_t type, const void* data, std::size_t n,
                   const std::filesystem::path& p) {
  if (n == 0) return;
  hid_t space = H5Dget_space(ds);
  hsize_t cur[1];
  H5Sget_simple_extent_dims(space, cur, nullptr);
  H5Sclose(space);
  const hsize_t grown[1] = {cur[0] + n};
  if (H5Dset_extent(ds, grown) < 0) fail(p, "cannot extend a dataset");
  hid_t file_space = H5Dget_space(ds);
  const hsize_t start[1] = {cur[0]};
  const hsize_t count[1] = {n};
  H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr);
  hid_t mem_space = H5Screate_simple(1, count, nullptr);
  const herr_t rc = H5Dwrite(ds, type, mem_space, file_space, H5P_DEFAULT, data);
  H5Sclose(mem_space);
  H5Sclose(file_space);
  if (rc < 0) fail(p, "write failed");
}

void write_fixed(hid_t loc, const char* name, hid_t type, const void* data, std::size_t n,
                 const std::filesystem::path& p) {
  const hsize_t dims[1] = {n};
  hid_t space = H5Screate_simple(1, dims, nullptr);
  hid_t ds = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (ds < 0) fail(p, std::string("cannot create dataset ") + name);
  if (n && H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) fail(p, "write failed");
  H5Dclose(ds);
  H5Sclose(space);
}

// Variable-length UTF-8 strings: h5py reads them as str.
void write_attribute(hid_t loc, const std::string& name, const std::string& value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT);
  const char* text = value.c_str();
  H5Awrite(attr, type, &text);
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

}  // namespace

std::string run_file_name(const std::string& requested) {
  // Only the last path component counts (a client cannot write outside the
  // output directory), and only a safe character set survives: a NUL would
  // cut the path short at the system call (so "x.dat\0" became "x.dat"),
  // control bytes and shell metacharacters have no place in a file name.
  constexpr std::size_t kMaxBase = 128;
  std::string base = requested;
  if (const auto slash = base.find_last_of('/'); slash != std::string::npos) {
    base.erase(0, slash + 1);
  }
  for (char& c : base) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-' || c == '+';
    if (!safe) c = '_';
  }
  if (base.size() > kMaxBase) base.resize(kMaxBase);
  for (bool stripped = true; stripped;) {
    stripped = false;
    for (const std::string suffix : {".root", ".ntuple"}) {
      if (base.size() > suffix.size() &&
          base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0) {
        base.resize(base.size() - suffix.size());
        stripped = true;
      }
    }
  }
  // Leading dots would make hidden files (or "." and "..").
  while (!base.empty() && base.front() == '.') base.erase(0, 1);
  if (base.empty() || base == "root" || base == "ntuple") {
    static std::atomic<std::uint64_t> counter{0};
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    base = "run_" + std::to_string(now) + "_" + std::to_string(counter++);
  }
  return base + ".charon.h5";
}

namespace {

// `wanted` with "-N" inserted before ".charon.h5" (N >= 1), or as is for 0.
std::filesystem::path numbered(const std::filesystem::path& wanted, int n) {
  if (n == 0) return wanted;
  static const std::string kExt = ".charon.h5";
  std::string name = wanted.filename().string();
  const auto cut =
      name.size() >= kExt.size() && name.compare(name.size() - kExt.size(), kExt.size(), kExt) == 0
          ? name.size() - kExt.size()
          : name.size();
  name.insert(cut, "-" + std::to_string(n));
  return wanted.parent_path() / name;
}

std::filesystem::path partial_of(const std::filesystem::path& p) {
  auto t = p;
  t += ".partial";
  return t;
}

constexpr int kMaxVariants = 10000;

}  // namespace

RunFile::RunFile(std::filesystem::path final_path, const wire::charon::DetectorInfo& det,
                 const std::map<std::string, std::string>& attributes)
    : final_path_(std::move(final_path)) {
  // HDF5 1.10 cannot close a file after a failed write and crashes on it in
  // its exit handler; every file of ours is closed (or given up) by its
  // owner, so the handler is not needed. Effective before HDF5's first use.
  static const bool no_atexit = (H5dont_atexit(), true);
  (void)no_atexit;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors are reported by return codes
  // Never replace a file: a reused run name gets the first free "-N"
  // variant, and the temporary file is created exclusively.
  const std::filesystem::path wanted = final_path_;
  for (int n = 0; file_ < 0; ++n) {
    if (n == kMaxVariants) fail(wanted, "no free file name (10000 runs of this name?)");
    final_path_ = numbered(wanted, n);
    temp_path_ = partial_of(final_path_);
    std::error_code ec;
    if (std::filesystem::exists(final_path_, ec) || std::filesystem::exists(temp_path_, ec)) {
      continue;
    }
    file_ = H5Fcreate(temp_path_.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
    if (file_ < 0 && !std::filesystem::exists(temp_path_, ec)) {
      fail(temp_path_, "cannot create the file");
    }
  }
  if (final_path_ != wanted) {
    log::warn("run file {} exists already; writing {}", wanted.filename().string(),
              final_path_.filename().string());
  }
  write_attribute(file_, "format", "acheron.charon.run");
  write_attribute(file_, "version", std::to_string(kRunFileVersion));
  write_attribute(file_, "run_name", final_path_.filename().string());
  write_attribute(file_, "created_unix",
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count()));
  for (const auto& [k, v] : attributes) write_attribute(file_, k, v);
  hid_t det_group = H5Gcreate2(file_, "detinfo", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  write_fixed(det_group, "pmt_x", H5T_NATIVE_FLOAT, det.x.data(), det.x.size(), temp_path_);
  write_fixed(det_group, "pmt_y", H5T_NATIVE_FLOAT, det.y.data(), det.y.size(), temp_path_);
  write_fixed(det_group, "pmt_z", H5T_NATIVE_FLOAT, det.z.data(), det.z.size(), temp_path_);
  write_fixed(det_group, "pmt_type", H5T_NATIVE_INT32, det.type.data(), det.type.size(),
              temp_path_);
  H5Gclose(det_group);
  hid_t out = H5Gcreate2(file_, "output", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  for (const char* name : {"event_id", "nchannel_id", "channel_id", "flag"}) {
    datasets_[name] = make_dataset(out, name, H5T_NATIVE_UINT32, temp_path_);
  }
  datasets_["hit_offset"] = make_dataset(out, "hit_offset", H5T_NATIVE_UINT64, temp_path_);
  for (const char* name : {"time", "wavelength", "u", "v", "w", "pol_x", "pol_y", "pol_z"}) {
    datasets_[name] = make_dataset(out, name, H5T_NATIVE_FLOAT, temp_path_);
  }
  // Version 2: positions and step history per hit, and per event whether
  // its hits carry them.
  for (const char* name : {"pos_x", "pos_y", "pos_z"}) {
    datasets_[name] = make_dataset(out, name, H5T_NATIVE_FLOAT, temp_path_);
  }
  for (const char* name : {"boundaries", "scatters", "reemissions", "steps"}) {
    datasets_[name] = make_dataset(out, name, H5T_NATIVE_UINT32, temp_path_);
  }
  datasets_["sequence"] = make_dataset(out, "sequence", H5T_NATIVE_UINT64, temp_path_);
  for (const char* name : {"has_steps", "step_history"}) {
    datasets_[name] = make_dataset(out, name, H5T_NATIVE_UINT8, temp_path_);
  }
  H5Gclose(out);
  const std::uint64_t zero = 0;
  append_values(datasets_["hit_offset"], H5T_NATIVE_UINT64, &zero, 1, temp_path_);
}

void RunFile::abandon() noexcept {
  if (closed_) return;
  closed_ = true;
  for (auto& [name, ds] : datasets_) H5Dclose(ds);
  datasets_.clear();
  if (file_ >= 0) H5Fclose(file_);
  std::error_code ec;
  std::filesystem::remove(temp_path_, ec);
}

RunFile::~RunFile() {
  try {
    close();
  } catch (const std::exception& e) {
    log::error("{}", e.what());
  }
}

void RunFile::append(const std::vector<wire::charon::Hits>& events) {
  if (closed_) throw SetupError("run file " + final_path_.string() + " is closed");
  // A full disk is found before HDF5 writes anything: after a failed write
  // HDF5 can neither finish nor close the file. Room is required for the
  // basket twice over, plus a new chunk of every dataset (19 of 4-byte, two
  // of 8-byte and two of 1-byte elements, kChunk each: 5.9 MiB) and 256 KiB
  // of metadata.
  std::uint64_t need = (std::uint64_t{kChunk} * (19 * 4 + 2 * 8 + 2)) + (std::uint64_t{256} << 10);
  for (const auto& e : events) need += 2 * (18 + std::uint64_t{84} * e.size());
  struct statvfs fs {};
  if (::statvfs(temp_path_.parent_path().c_str(), &fs) == 0 &&
      std::uint64_t{fs.f_bavail} * fs.f_frsize < need) {
    fail(temp_path_, "no space left on the device (" +
                         std::to_string(std::uint64_t{fs.f_bavail} * fs.f_frsize) +
                         " bytes free, the next basket needs about " + std::to_string(need) + ")");
  }
  std::vector<std::uint32_t> ids, counts;
  std::vector<std::uint64_t> offsets;
  std::vector<std::uint8_t> has_steps, history;
  for (const auto& e : events) {
    const auto p = temp_path_;
    // An event's hits without step data (from a worker without the STEPS
    // extension) are written with NaN positions and zero counts.
    const bool known = e.steps && e.steps->size() == e.size();
    has_steps.push_back(known ? 1 : 0);
    history.push_back(known ? static_cast<std::uint8_t>(e.steps->history_length) : 0);
    if (known) {
      const auto& s = *e.steps;
      append_values(datasets_["pos_x"], H5T_NATIVE_FLOAT, s.pos_x.data(), s.size(), p);
      append_values(datasets_["pos_y"], H5T_NATIVE_FLOAT, s.pos_y.data(), s.size(), p);
      append_values(datasets_["pos_z"], H5T_NATIVE_FLOAT, s.pos_z.data(), s.size(), p);
      append_values(datasets_["boundaries"], H5T_NATIVE_UINT32, s.boundaries.data(), s.size(), p);
      append_values(datasets_["scatters"], H5T_NATIVE_UINT32, s.scatters.data(), s.size(), p);
      append_values(datasets_["reemissions"], H5T_NATIVE_UINT32, s.reemissions.data(), s.size(), p);
      append_values(datasets_["steps"], H5T_NATIVE_UINT32, s.steps.data(), s.size(), p);
      append_values(datasets_["sequence"], H5T_NATIVE_UINT64, s.sequence.data(), s.size(), p);
    } else if (e.size() > 0) {
      const std::vector<float> nan(e.size(), std::numeric_limits<float>::quiet_NaN());
      const std::vector<std::uint32_t> zero32(e.size(), 0);
      const std::vector<std::uint64_t> zero64(e.size(), 0);
      for (const char* name : {"pos_x", "pos_y", "pos_z"}) {
        append_values(datasets_[name], H5T_NATIVE_FLOAT, nan.data(), e.size(), p);
      }
      for (const char* name : {"boundaries", "scatters", "reemissions", "steps"}) {
        append_values(datasets_[name], H5T_NATIVE_UINT32, zero32.data(), e.size(), p);
      }
      append_values(datasets_["sequence"], H5T_NATIVE_UINT64, zero64.data(), e.size(), p);
    }
    ids.push_back(e.event_id);
    counts.push_back(static_cast<std::uint32_t>(e.size()));
    hits_ += e.size();
    offsets.push_back(hits_);
    append_values(datasets_["channel_id"], H5T_NATIVE_UINT32, e.channel.data(), e.size(), p);
    append_values(datasets_["flag"], H5T_NATIVE_UINT32, e.flags.data(), e.flags.size(), p);
    append_values(datasets_["time"], H5T_NATIVE_FLOAT, e.time.data(), e.time.size(), p);
    append_values(datasets_["wavelength"], H5T_NATIVE_FLOAT, e.wavelength.data(),
                  e.wavelength.size(), p);
    append_values(datasets_["u"], H5T_NATIVE_FLOAT, e.dir_x.data(), e.dir_x.size(), p);
    append_values(datasets_["v"], H5T_NATIVE_FLOAT, e.dir_y.data(), e.dir_y.size(), p);
    append_values(datasets_["w"], H5T_NATIVE_FLOAT, e.dir_z.data(), e.dir_z.size(), p);
    append_values(datasets_["pol_x"], H5T_NATIVE_FLOAT, e.pol_x.data(), e.pol_x.size(), p);
    append_values(datasets_["pol_y"], H5T_NATIVE_FLOAT, e.pol_y.data(), e.pol_y.size(), p);
    append_values(datasets_["pol_z"], H5T_NATIVE_FLOAT, e.pol_z.data(), e.pol_z.size(), p);
  }
  append_values(datasets_["event_id"], H5T_NATIVE_UINT32, ids.data(), ids.size(), temp_path_);
  append_values(datasets_["nchannel_id"], H5T_NATIVE_UINT32, counts.data(), counts.size(),
                temp_path_);
  append_values(datasets_["hit_offset"], H5T_NATIVE_UINT64, offsets.data(), offsets.size(),
                temp_path_);
  append_values(datasets_["has_steps"], H5T_NATIVE_UINT8, has_steps.data(), has_steps.size(),
                temp_path_);
  append_values(datasets_["step_history"], H5T_NATIVE_UINT8, history.data(), history.size(),
                temp_path_);
  events_ += events.size();
  // Flushing makes the basket durable and surfaces write errors (a full disk)
  // now, while the run can still be failed cleanly.
  if (H5Fflush(file_, H5F_SCOPE_LOCAL) < 0) fail(temp_path_, "flush failed");
}

void RunFile::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& [name, ds] : datasets_) H5Dclose(ds);
  datasets_.clear();
  if (H5Fclose(file_) < 0) fail(temp_path_, "close failed");
  // The final name is claimed without replacing anything created since the
  // run began (RENAME_NOREPLACE); if taken, the next free variant.
  const std::filesystem::path wanted = final_path_;
  for (int n = 0;; ++n) {
    if (n == kMaxVariants) fail(temp_path_, "no free file name to rename to");
    const auto target = n == 0 ? wanted : numbered(wanted, n);
    if (::renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) ==
        0) {
      final_path_ = target;
      return;
    }
    if (errno != EEXIST) fail(final_path_, std::string("rename failed: ") + std::strerror(errno));
  }
}

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
