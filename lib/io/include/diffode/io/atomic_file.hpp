#pragma once
// Files written whole or not at all: a temporary name in the same folder, fsync, rename.
#include <cstdio>
#include <filesystem>
#include <string>

namespace diffode {

// A file written under a temporary name in the same folder and renamed onto `path` by
// commit(); destroyed uncommitted, it removes the temporary. Write errors (a full disk)
// throw OutputError naming the file; a path that is a directory is an InputError.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(const std::string& s) { write(s.data(), s.size()); }
  void commit();  // flush, fsync, rename
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_, tmp_;
  std::FILE* f_ = nullptr;
};

// The temporary a write of `path` goes to first: "<path>.tmp-<pid>-<n>" in the same folder
// (a later run into the folder removes those a killed one left).
std::filesystem::path temporary_name(const std::filesystem::path& path);

// The folder of an output file: it must exist, or the writer creates it (then the nearest
// existing folder above it must take new entries).
enum class OutputFolder { must_exist, created };

// InputError (exit 2) unless a file can be written at `path` now: not a directory, and its
// folder as `folder` says. Checked before a long computation whose result goes there, so
// that a wrong -o is named at once, not after the work.
void check_can_write(const std::filesystem::path& path, OutputFolder folder = OutputFolder::must_exist);

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);


}  // namespace diffode
