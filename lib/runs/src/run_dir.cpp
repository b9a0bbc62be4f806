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

DirLock::DirLock(const fs::path& dir) : path_(dir / ".lock") {
  // The holder removes the file when it lets go; a process that opened it just before
  // would then lock a file no longer in the folder, so the lock counts only if the locked
  // file is still the one at the path (else try again).
  for (int attempt = 0; attempt < 100; ++attempt) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw OutputError("cannot create the lock file " + path_.string() + ": " + errno_text());
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char pid[32] = {0};
      const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
      ::close(fd_);
      fd_ = -1;
      throw InputError(dir.string() + " is being written by another diffode process" +
                       (n > 0 ? " (pid " + std::string(pid, static_cast<size_t>(n)) + ")" : std::string()) +
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
  ::unlink(path_.c_str());
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
  auto digits = [](const std::string& t) { return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos; };
  if (dash == std::string::npos || !digits(rest.substr(0, dash)) || !digits(rest.substr(dash + 1))) return file;
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
}  // namespace

void remove_parts(const fs::path& dir) {
  const fs::path parts = dir / "parts";
  std::error_code ec;
  if (!fs::is_directory(parts, ec) || fs::is_symlink(parts, ec)) return;
  std::vector<fs::path> ours;
  for (fs::directory_iterator it(parts, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && is_part_file(it->path().filename().string())) ours.push_back(it->path());
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
    if (!done.is_object() || !done.contains("run") || done["run"] == run) continue;
    spdlog::warn("{}: replacing the finished run of another config ({})", dir.string(),
                 first_difference(done["run"], run));
    std::error_code ec;
    fs::remove(dir / record, ec);  // the record first: a crash leaves no manifest over other samples
    if (done.contains("files") && done["files"].is_array())
      for (const auto& f : done["files"])
        if (f.is_string()) fs::remove(dir / f.get<std::string>(), ec);
    for (const char* other : {"timings.json", "grid.png", "samples.npy"}) fs::remove(dir / other, ec);
    fs::remove(dir / "samples", ec);  // only if empty
  }
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
  if (fs::exists(dir_, ec) && !fs::is_directory(dir_, ec))
    throw InputError(dir_.string() + " exists and is not a folder: diffode keeps a run's batches there; move it away");
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
