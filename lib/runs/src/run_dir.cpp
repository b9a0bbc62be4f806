#include "run_dir.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <fstream>

#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/io/json_file.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

// ---- run directory lock ----

namespace {
// A non-empty run of decimal digits (a pid, a seed, a temporary's number).
bool all_digits(const std::string& t) { return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos; }

// Refuses (closing fd) a lock file that is not diffode's: not a regular file, linked
// elsewhere too, or holding anything but a process id.
void check_lock_file(int& fd, const fs::path& path) {
  struct stat st {};
  char text[32] = {0};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1;
  const ssize_t n = regular ? ::pread(fd, text, sizeof text, 0) : -1;
  const std::string held(text, n > 0 ? static_cast<size_t>(n) : 0);
  if (regular && n >= 0 && n < static_cast<ssize_t>(sizeof text) &&
      (held.empty() || all_digits(held)))
    return;
  ::close(fd);
  fd = -1;
  throw InputError(path.string() + " is not diffode's lock file (" +
                   (regular ? std::string("it holds something other than a process id") : "not a plain file") +
                   "); move it away");
}
}  // namespace

DirLock::DirLock(const fs::path& dir) : path_(dir / ".lock") {
  // The holder removes the file when it lets go; a process that opened it just before
  // would then lock a file no longer in the folder, so the lock counts only if the locked
  // file is still the one at the path (else try again).
  // A .lock diffode did not write (a link, not a regular file, or holding something other
  // than a pid) is refused before anything is written to it.
  for (int attempt = 0; attempt < 100; ++attempt) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd_ < 0 && errno == ELOOP) throw InputError(path_.string() + " is a symbolic link, not diffode's lock file; move it away");
    if (fd_ < 0) throw OutputError("cannot create the lock file " + path_.string() + ": " + errno_text());
    check_lock_file(fd_, path_);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char pid[32] = {0};
      const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
      ::close(fd_);
      fd_ = -1;
      const std::string holder = n > 0 ? std::string(pid, static_cast<size_t>(n)) : std::string();
      if (holder == std::to_string(::getpid()))  // this command holds it: e.g. merge -o into one of its shards
        throw InputError(dir.string() + " is already in use by this command (an output folder that is also one of "
                         "its inputs?); give another output directory");
      throw InputError(dir.string() + " is being written by another diffode process" +
                       (n > 0 ? " (pid " + holder + ")" : std::string()) +
                       "; wait for it to finish or give another output directory");
    }
    struct stat held {}, at_path {};
    if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &at_path) == 0 && held.st_ino == at_path.st_ino &&
        held.st_dev == at_path.st_dev)
      break;
    ::close(fd_);
    fd_ = -1;
  }
  if (fd_ < 0) throw OutputError("cannot take the lock " + path_.string() + ": it keeps being replaced");
  const std::string me = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
    spdlog::debug("could not write the pid into {}", path_.string());
}

DirLock::~DirLock() {
  if (fd_ < 0) return;
  struct stat held {}, at_path {};
  if (::fstat(fd_, &held) == 0 && ::lstat(path_.c_str(), &at_path) == 0 && held.st_ino == at_path.st_ino &&
      held.st_dev == at_path.st_dev)
    ::unlink(path_.c_str());  // only the file it locked
  ::close(fd_);
}

std::string safe_file_name(const std::string& text) {
  std::string out;
  for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '+' || c == '-' ? c : '_';
  return out;
}

std::string csv_field(const nlohmann::json& v) {
  std::string text = v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

fs::path cache_dir() {
  if (const char* d = std::getenv("DIFFODE_CACHE"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "diffode";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "diffode";
  return fs::temp_directory_path() / "diffode-cache";
}

void CreatedDirs::create(const fs::path& dir) {
  if (!fs::exists(dir)) created_.push_back(dir);
  fs::create_directories(dir);
}

CreatedDirs::~CreatedDirs() {
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
    std::error_code ec;
    if (fs::is_empty(*it, ec)) fs::remove(*it, ec);
  }
}

void check_writable_dir(const fs::path& dir, CreatedDirs& created) {
  try {
    created.create(dir);
  } catch (const fs::filesystem_error& e) {
    throw InputError("output directory " + dir.string() + ": cannot be created: " + e.code().message());
  }
  if (!fs::is_directory(dir))
    throw InputError("output directory " + dir.string() + ": cannot be created: a file of that name exists");
  try {
    AtomicFile probe(dir / ".write-test");
    probe.write("ok");
  } catch (const std::exception& e) {
    throw InputError("output directory " + dir.string() + ": cannot be written: " + e.what());
  }
}

std::string first_difference(const json& a, const json& b) {
  const json patch = json::diff(a, b);
  if (patch.empty()) return "(no difference)";
  const json::json_pointer ptr(patch[0]["path"].get<std::string>());
  auto text = [&](const json& j) {
    if (!j.contains(ptr)) return std::string("(absent)");
    std::string t = j.at(ptr).dump();
    return t.size() > 60 ? t.substr(0, 57) + "..." : t;
  };
  return ptr.to_string() + " is " + text(a) + " in one and " + text(b) + " in the other";
}

std::string part_name(int64_t first) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "batch-%012lld.npy", static_cast<long long>(first));
  return buf;
}

namespace {
std::vector<int64_t> batch_shape(int64_t count, const json& shape) {
  std::vector<int64_t> s = {count};
  for (const auto& d : shape) s.push_back(d.get<int64_t>());
  return s;
}
}  // namespace

namespace {
constexpr size_t kDigestChars = 32;
const std::string kTrailerTag = "diffode-batch ";
const size_t kTrailerSize = kTrailerTag.size() + 2 * kDigestChars + 2;  // tag, digests, ' ', '\n'

std::string data_digest(int64_t first, const char* data, size_t bytes) {
  std::string text = std::to_string(first) + ":";
  text.append(data, bytes);
  return sha256_hex(text).substr(0, kDigestChars);
}

std::string trailer(const std::string& run_digest, int64_t first, const char* data, size_t bytes) {
  return kTrailerTag + run_digest + " " + data_digest(first, data, bytes) + "\n";
}
}  // namespace

std::string run_digest(const json& run) { return sha256_hex(run.dump()).substr(0, kDigestChars); }

bool part_complete(const fs::path& file, int64_t first, int64_t count, const json& shape, const std::string& digest) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) return false;
  const auto s = batch_shape(count, shape);
  int64_t values = 1;
  for (auto d : s) values *= d;
  const std::string header = npy_header(s);
  const size_t bytes = static_cast<size_t>(values) * sizeof(float);
  if (size != header.size() + bytes + kTrailerSize) return false;
  std::ifstream in(file, std::ios::binary);
  std::string all(size, '\0');
  if (!in.read(all.data(), static_cast<std::streamsize>(size)) || all.compare(0, header.size(), header) != 0)
    return false;
  return all.compare(header.size() + bytes, kTrailerSize, trailer(digest, first, all.data() + header.size(), bytes)) == 0;
}

namespace {
// The file a temporary of AtomicFile ("<name>.tmp-<pid>-<n>") is for; `file` itself when
// it is not one.
std::string temporary_target(const std::string& file) {
  const auto at = file.rfind(".tmp-");
  if (at == std::string::npos) return file;
  const std::string rest = file.substr(at + 5);
  const auto dash = rest.find('-');
  if (dash == std::string::npos || !all_digits(rest.substr(0, dash)) || !all_digits(rest.substr(dash + 1))) return file;
  return file.substr(0, at);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The files diffode writes in parts/: run.json, batch-<first>.npy, and their temporaries.
bool is_part_file(const std::string& name) {
  const std::string target = temporary_target(name);
  return target == "run.json" || (target.rfind("batch-", 0) == 0 && ends_with(target, ".npy"));
}
bool is_run_identity(const json& j) { return j.is_object() && j.contains("config") && j.contains("model"); }

// Whether a batch file ends in diffode's trailer (of any run).
bool has_batch_trailer(const fs::path& file) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec || size < kTrailerSize) return false;
  std::ifstream in(file, std::ios::binary);
  std::string tail(kTrailerSize, '\0');
  in.seekg(static_cast<std::streamoff>(size - kTrailerSize));
  return in.read(tail.data(), static_cast<std::streamsize>(kTrailerSize)) && tail.rfind(kTrailerTag, 0) == 0;
}

// A file in parts/ that diffode wrote: a temporary of its names, a run identity as run.json,
// a batch file with its trailer.
bool is_own_part(const fs::path& file) {
  const std::string name = file.filename().string();
  if (!is_part_file(name)) return false;
  if (temporary_target(name) != name) return true;
  return name == "run.json" ? is_run_identity(read_json_file(file)) : has_batch_trailer(file);
}
}  // namespace

void remove_parts(const fs::path& dir) {
  const fs::path parts = dir / "parts";
  std::error_code ec;
  if (!fs::is_directory(parts, ec) || fs::is_symlink(parts, ec)) return;
  std::vector<fs::path> ours;
  for (fs::directory_iterator it(parts, ec), end; !ec && it != end; it.increment(ec))
    if (fs::is_regular_file(it->symlink_status(ec)) && is_own_part(it->path())) ours.push_back(it->path());
  for (const auto& f : ours) fs::remove(f, ec);
  fs::remove(parts, ec);  // only when nothing else is in it: never what diffode did not write
}

void remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> stale;
  const std::vector<std::string> outputs = {"samples.npy", "grid.png",   "manifest.json",
                                            "timings.json", "shard.json", ".write-test"};
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string f = it->path().filename().string(), target = temporary_target(f);
    if (target != f && it->is_regular_file(ec) && std::find(outputs.begin(), outputs.end(), target) != outputs.end())
      stale.push_back(it->path());
  }
  for (fs::directory_iterator it(dir / "samples", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string f = it->path().filename().string(), target = temporary_target(f);
    if (target != f && it->is_regular_file(ec) && ends_with(target, ".png")) stale.push_back(it->path());
  }
  for (const auto& f : stale) {
    spdlog::info("removing {}, a temporary file of an earlier, interrupted diffode run", f.string());
    fs::remove(f, ec);
  }
}

void retire_finished_run(const fs::path& dir, const json& run) {
  for (const char* record : {"manifest.json", "shard.json"}) {
    const json done = read_json_file(dir / record);
    // Only diffode's own records, checked whole: a record never names what is removed
    // beyond the names diffode writes in this folder (check_own_folder refused the rest).
    const bool ours = std::string(record) == "manifest.json" ? is_manifest(done) : is_shard_record(done);
    if (!ours || done["run"] == run) continue;
    spdlog::warn("{}: replacing the finished run of another config ({})", dir.string(),
                 first_difference(done["run"], run));
    std::error_code ec;
    fs::remove(dir / record, ec);  // the record first: a crash leaves no manifest over other samples
    const bool samples_dir = fs::is_directory(fs::symlink_status(dir / "samples", ec));
    if (done.contains("files"))
      for (const auto& f : done["files"])
        if (f.is_string() && is_listed_output(f.get<std::string>()) && (samples_dir || f.get<std::string>().rfind("samples/", 0) != 0))
          fs::remove(dir / f.get<std::string>(), ec);
    for (const char* other : {"timings.json", "grid.png", "samples.npy"}) fs::remove(dir / other, ec);
    if (samples_dir) fs::remove(dir / "samples", ec);  // only if empty
  }
}

// ---- records read back, and whose folder it is

namespace {
bool has_integer(const json& o, const char* key) { return o.is_object() && o.contains(key) && o[key].is_number_integer(); }
}  // namespace

bool is_listed_output(const std::string& name) {
  if (name == "samples.npy" || name == "grid.png") return true;
  const std::string folder = "samples/";
  if (name.rfind(folder, 0) != 0 || !ends_with(name, ".png")) return false;
  const std::string seed = name.substr(folder.size(), name.size() - folder.size() - 4);
  const std::string magnitude = seed[0] == '-' ? seed.substr(1) : seed;
  return magnitude.size() <= 19 && all_digits(magnitude);
}

void check_manifest(const json& m, const std::string& where) {
  auto fail = [&](const std::string& pointer, const std::string& what) {
    throw InputError(where + ": " + pointer + ": " + what + " (not a manifest as diffode writes it)");
  };
  if (!m.is_object()) fail("/", "expected an object, got " + json_excerpt(m, 60));
  if (!m.contains("run") || !m["run"].is_object()) fail("/run", "expected the run identity (an object)");
  const json seeds = m.value("seeds", json());
  if (!has_integer(seeds, "first") || !has_integer(seeds, "count")) fail("/seeds", "expected {first, count}, integers");
  if (!m.contains("labels") || !m["labels"].is_array()) fail("/labels", "expected a list of integer labels");
  for (size_t i = 0; i < m["labels"].size(); ++i)
    if (!m["labels"][i].is_number_integer())
      fail("/labels/" + std::to_string(i), "expected an integer label, got " + json_excerpt(m["labels"][i], 60));
  if (!m.contains("files") || !m["files"].is_array()) fail("/files", "expected the list of files the run wrote");
  for (size_t i = 0; i < m["files"].size(); ++i) {
    const json& f = m["files"][i];
    if (!f.is_string() || !is_listed_output(f.get<std::string>()))
      fail("/files/" + std::to_string(i), json_excerpt(f, 60) +
                                              " is not a file diffode writes in a run folder (samples.npy, grid.png, "
                                              "samples/<seed>.png)");
  }
  if (m.contains("quality") && !m["quality"].is_null() && !m["quality"].is_object())
    fail("/quality", "expected null or an object");
}

bool is_manifest(const json& m) {
  try {
    check_manifest(m, "manifest");
    return true;
  } catch (const InputError&) {
    return false;
  }
}

bool is_shard_record(const json& s) {
  return s.is_object() && s.contains("run") && s["run"].is_object() && has_integer(s.value("shard", json()), "index") &&
         has_integer(s["shard"], "count") && has_integer(s.value("batches", json()), "first") &&
         has_integer(s["batches"], "last");
}

namespace {

bool is_shard_dir_name(const std::string& name) {
  const std::string head = "shard-", of = "-of-";
  const auto at = name.find(of);
  return name.rfind(head, 0) == 0 && at != std::string::npos && all_digits(name.substr(head.size(), at - head.size())) &&
         all_digits(name.substr(at + of.size()));
}


[[noreturn]] void not_ours(const fs::path& dir, const fs::path& entry, const std::string& why) {
  throw InputError("output directory " + dir.string() + ": " + entry.string() + " " + why +
                   "; diffode does not write over it: move it away or give another output directory");
}

// What accounts for a run folder's files: its manifest (the files it lists), or a record of
// an unfinished run (parts/run.json) or of shards (shard.json here or in shard folders).
struct RunRecords {
  json manifest;
  bool unfinished = false;
  bool lists(const std::string& name) const {
    if (unfinished) return true;
    if (manifest.is_null()) return false;
    if (name == "timings.json") return true;
    const json& files = manifest["files"];
    return std::find(files.begin(), files.end(), json(name)) != files.end();
  }
};
RunRecords run_records(const fs::path& dir) {
  RunRecords r;
  if (const json m = read_json_file(dir / "manifest.json"); is_manifest(m)) r.manifest = m;
  std::error_code ec;
  r.unfinished = is_run_identity(read_json_file(dir / "parts" / "run.json")) || is_shard_record(read_json_file(dir / "shard.json"));
  for (fs::directory_iterator it(dir, ec), end; !r.unfinished && !ec && it != end; it.increment(ec))
    r.unfinished = is_shard_dir_name(it->path().filename().string()) && is_shard_record(read_json_file(it->path() / "shard.json"));
  return r;
}
}  // namespace

namespace {
// The file names of a folder of `kind` (besides temporaries of them) and its folders.
struct KindNames {
  std::vector<std::string> files, folders;
};
KindNames names_of(FolderKind kind) {
  switch (kind) {
    case FolderKind::run:
      return {{"samples.npy", "grid.png", "manifest.json", "timings.json", "shard.json", ".lock"}, {"samples", "parts"}};
    case FolderKind::compare:
      return {{"compare.json", "compare.csv", "compare_grid.png", "error_vs_nfe.svg", "error_vs_nfe.png", ".lock"},
              {"cells"}};
    case FolderKind::batch:
      break;
  }
  return {{"index.json", "index.csv"}, {}};
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// Whether diffode's records in `dir` account for its file `name` (of a folder of `kind`).
bool accounted_for(const fs::path& dir, FolderKind kind, const std::string& name, const RunRecords& run) {
  if (name == ".lock") return true;  // DirLock checked it
  if (kind == FolderKind::run) {
    if (name == "manifest.json") return !run.manifest.is_null();
    if (name == "shard.json") return is_shard_record(read_json_file(dir / name));
    return run.lists(name);
  }
  if (kind == FolderKind::compare) {
    const json c = read_json_file(dir / "compare.json");
    return c.is_object() && c.value("cells", json()).is_array() && c.value("reference", json()).is_object();
  }
  const json index = read_json_file(dir / "index.json");
  if (!index.is_array()) return false;
  for (const auto& row : index)
    if (!row.is_object() || !row.value("run", json()).is_string() || !row.value("dir", json()).is_string()) return false;
  return true;
}

// parts/ and samples/ of a run folder: only diffode's files under diffode's names there
// (in parts/, anything else is left alone and never written).
void check_run_subfolders(const fs::path& dir, const RunRecords& run) {
  std::error_code ec;
  for (fs::directory_iterator it(dir / "samples", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = "samples/" + it->path().filename().string();
    if (!is_listed_output(name)) continue;  // a temporary or a file diffode never writes: left alone
    if (!fs::is_regular_file(it->symlink_status(ec)) || !run.lists(name))
      not_ours(dir, fs::path(name), "was not written by diffode (no diffode record here lists it)");
  }
  for (fs::directory_iterator it(dir / "parts", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!is_part_file(name) || temporary_target(name) != name) continue;
    const bool regular = fs::is_regular_file(it->symlink_status(ec));
    if (!regular || (name == "run.json" ? !is_run_identity(read_json_file(it->path())) : !has_batch_trailer(it->path())))
      not_ours(dir, fs::path("parts") / name, "was not written by diffode");
  }
}
}  // namespace

void check_own_folder(const fs::path& dir, FolderKind kind) {
  const KindNames names = names_of(kind);
  const RunRecords run = kind == FolderKind::run ? run_records(dir) : RunRecords{};
  std::error_code exists_ec;
  if (kind == FolderKind::run && fs::exists(fs::symlink_status(dir / "manifest.json", exists_ec)))
    check_manifest(read_json_file(dir / "manifest.json"), (dir / "manifest.json").string());
  std::error_code ec;
  std::vector<fs::directory_entry> entries;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
  std::sort(entries.begin(), entries.end());
  for (const auto& e : entries) {
    const std::string name = e.path().filename().string(), target = temporary_target(name);
    const fs::file_status st = e.symlink_status(ec);
    const bool folder = contains(names.folders, name) || (kind == FolderKind::run && is_shard_dir_name(name));
    if (folder) {
      if (!fs::is_directory(st))
        throw InputError((dir / name).string() + " exists and is not a folder (or is a symbolic link): diffode keeps " +
                         "its own files there; move it away");
    } else if (target != name || !contains(names.files, name) || (kind == FolderKind::batch && fs::is_directory(st))) {
      continue;  // a temporary, a run's folder in a batch, or a file diffode never writes: left alone
    } else if (!fs::is_regular_file(st) || !accounted_for(dir, kind, name, run)) {
      not_ours(dir, name, "was not written by diffode (no diffode record here accounts for it)");
    }
  }
  if (kind == FolderKind::run) check_run_subfolders(dir, run);
}

RunParts::RunParts(const fs::path& dir, const json& run, bool resume)
    : dir_(dir / "parts"), shape_(run["model"]["metadata"]["sample_shape"]), run_digest_(run_digest(run)) {
  const json earlier = read_json_file(dir_ / "run.json");
  if (!earlier.is_null() && earlier != run) {
    if (resume)
      throw InputError("--resume: " + dir.string() + " holds an unfinished run of another config (" +
                       first_difference(earlier, run) + "); remove it or give another output directory");
    spdlog::warn("{} holds an unfinished run of another config ({}): starting over", dir.string(),
                 first_difference(earlier, run));
    remove_parts(dir);
  }
  // A finished run (or shard) of another config: refused with --resume; else it stays until
  // this run's batches are all complete (retire_finished_run), so a run that fails keeps it.
  for (const char* record : {"manifest.json", "shard.json"}) {
    const json done = read_json_file(dir / record);
    if (!done.is_object() || !done.contains("run") || done["run"] == run) continue;
    if (resume && earlier != run)
      throw InputError("--resume: " + dir.string() + " holds a finished run of another config (" +
                       first_difference(done["run"], run) + "); remove it or give another output directory");
    spdlog::info("{} holds a finished run of another config ({}): it is kept until this run has sampled every batch",
                 dir.string(), first_difference(done["run"], run));
  }
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dir_, ec)) && !fs::is_directory(fs::symlink_status(dir_, ec)))
    throw InputError(dir_.string() + " exists and is not a folder (or is a symbolic link): diffode keeps a run's " +
                     "batches there; move it away");
  fs::create_directories(dir_);
  if (earlier != run) write_file_atomic(dir_ / "run.json", run.dump(2) + "\n");
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
    present_.insert(it->path().filename().string());
}

fs::path RunParts::file(int64_t first) const { return dir_ / part_name(first); }

bool RunParts::complete(int64_t first, int64_t count) const {
  return present_.count(part_name(first)) > 0 && part_complete(file(first), first, count, shape_, run_digest_);
}

void RunParts::write(int64_t first, const at::Tensor& samples) const {
  const std::vector<int64_t> shape = batch_shape(samples.size(0), shape_);
  const char* data = reinterpret_cast<const char*>(samples.data_ptr<float>());
  const size_t bytes = static_cast<size_t>(samples.numel()) * sizeof(float);
  AtomicFile f(file(first));
  f.write(npy_header(shape));
  f.write(data, bytes);
  f.write(trailer(run_digest_, first, data, bytes));
  f.commit();
}

}  // namespace diffode
