#include "diffode/io/atomic_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

#include "diffode/core/error.hpp"

namespace diffode {

namespace fs = std::filesystem;

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

fs::path temporary_name(const fs::path& path) {
  std::random_device rd;
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000);
  return tmp;
}

AtomicFile::AtomicFile(fs::path path) : path_(std::move(path)) {
  std::error_code dir_ec;
  if (fs::is_directory(path_, dir_ec))
    throw InputError(path_.string() + " is a directory: give a file name to write to");
  tmp_ = temporary_name(path_);
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) throw OutputError("cannot create " + tmp_.string() + ": " + errno_text());
}

AtomicFile::~AtomicFile() {
  if (f_) {
    std::fclose(f_);
    std::error_code ec;
    fs::remove(tmp_, ec);
  }
}

void AtomicFile::write(const void* data, size_t size) {
  if (!f_) throw std::logic_error("AtomicFile::write after commit: " + path_.string());
  if (size && std::fwrite(data, 1, size, f_) != size)
    throw OutputError("cannot write " + path_.string() + ": " + errno_text());
}

void AtomicFile::commit() {
  if (std::fflush(f_) != 0 || ::fsync(::fileno(f_)) != 0)
    throw OutputError("cannot write " + path_.string() + ": " + errno_text());
  std::FILE* f = f_;
  f_ = nullptr;
  if (std::fclose(f) != 0) {
    std::error_code ec;
    fs::remove(tmp_, ec);
    throw OutputError("cannot write " + path_.string() + ": " + errno_text());
  }
  std::error_code ec;
  fs::rename(tmp_, path_, ec);
  if (ec) {
    const std::string why = ec.message();  // before remove() overwrites ec
    fs::remove(tmp_, ec);
    throw OutputError("cannot rename onto " + path_.string() + ": " + why);
  }
}

void check_can_write(const fs::path& path, OutputFolder rule) {
  fs::path folder = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw InputError(path.string() + " is a directory: give a file name to write to");
  if (rule == OutputFolder::created)  // the nearest folder that exists is where an entry is made
    while (!fs::exists(folder, ec) && folder.has_relative_path() && folder.parent_path() != folder)
      folder = folder.parent_path().empty() ? fs::path(".") : folder.parent_path();
  if (!fs::is_directory(folder, ec))
    throw InputError("cannot write " + path.string() + ": " + folder.string() +
                     (fs::exists(folder, ec) ? " is not a folder" : " does not exist"));
  if (folder != (path.parent_path().empty() ? fs::path(".") : path.parent_path())) {
    if (::access(folder.c_str(), W_OK) != 0) throw InputError("cannot write " + path.string() + ": " + errno_text());
    return;
  }
  const fs::path probe = temporary_name(path);
  std::FILE* f = std::fopen(probe.c_str(), "wb");
  if (!f) throw InputError("cannot write " + path.string() + ": " + errno_text());
  std::fclose(f);
  fs::remove(probe, ec);
}

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}
}  // namespace diffode
