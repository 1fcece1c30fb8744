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

RunFileSink::RunFileSink(std::filesystem::path outdir,
                         std::map<std::string, std::string> attributes)
    : outdir_(std::move(outdir)), attributes_(std::move(attributes)) {
  std::error_code ec;
  std::filesystem::create_directories(outdir_, ec);
  ACHERON_EXPECT(std::filesystem::is_directory(outdir_),
                 "output directory '" + outdir_.string() +
                     "' does not exist and cannot be created (permissions?) choose --outdir");
}

std::unique_ptr<RunWriter> RunFileSink::begin_run(const std::string& requested_name,
                                                  const wire::charon::DetectorInfo& detector) {
  // Directory parts of the requested name are dropped: a client cannot
  // write outside the output directory.
  return std::make_unique<RunFile>(path_for(requested_name), detector, attributes_);
}

std::filesystem::path RunFileSink::path_for(const std::string& requested_name) const {
  return outdir_ / run_file_name(requested_name);
}

}  // namespace acheron::charon
