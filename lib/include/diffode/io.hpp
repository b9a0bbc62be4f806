#pragma once
// Files: atomic writes (temporary name + rename), PNG with a tEXt chunk, .npy, sha256.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace diffode {

// SHA-256 of a file's bytes, lowercase hex. Throws InputError if it cannot be read.
std::string sha256_file(const std::filesystem::path& path);
std::string sha256_hex(const std::string& bytes);

// A file written under a temporary name in the same folder and renamed onto `path` by
// commit(); destroyed uncommitted, it removes the temporary. Write errors (a full disk)
// throw std::runtime_error naming the file.
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

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

// Holds `dir`/.lock (flock) while alive, so two processes never write one run directory:
// a second one gets an InputError naming the holder's pid. The lock ends with the process
// even when it is killed; the file is removed when the holder lets go.
class DirLock {
 public:
  explicit DirLock(const std::filesystem::path& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// Writes a float32 C-order .npy file of `shape` from `data`, whole or not at all.
void write_npy(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data);

// Every JSON diffode reads (configs, --set values, model and predictor metadata, its own
// records) is parsed by parse_bounded_json: nesting deeper than kMaxJsonDepth (which would
// overflow the stack when printed or destroyed) and a key repeated in one object (where
// the last would silently win) are refused with std::runtime_error; nlohmann's own
// parse_error and out_of_range (a number beyond double) pass through.
constexpr int kMaxJsonDepth = 64;
nlohmann::json parse_bounded_json(const std::string& text);

// Parses JSON text into InputError "where: ...": syntax errors with line and column
// ("where:L:C: malformed JSON: ..."), too deep, a repeated key, a number out of range.
nlohmann::json parse_json_text(const std::string& text, const std::string& where);

// Why `path` cannot be read as an input file ("file does not exist", "is a directory", "is
// not a regular file ...", "cannot be examined: ..."), or "" when it is a regular file.
std::string input_file_problem(const std::filesystem::path& path);

// A value for a message: its JSON text, cut to about max_chars.
std::string json_excerpt(const nlohmann::json& value, size_t max_chars = 200);

// A JSON file's value; null when the file is missing or not valid JSON, as
// parse_bounded_json reads it (for records a run wrote itself, where either means "not there").
nlohmann::json read_json_file(const std::filesystem::path& path);

// `text` with every character but letters, digits, '.', '+' and '-' replaced by '_'.
std::string safe_file_name(const std::string& text);

// A JSON value as one CSV field: strings bare, null empty, quoted when it holds , " or a newline.
std::string csv_field(const nlohmann::json& v);

// Where diffode caches teacher trajectories and reference solutions: $DIFFODE_CACHE,
// else $XDG_CACHE_HOME/diffode, else ~/.cache/diffode.
std::filesystem::path cache_dir();

// An 8-bit image, rows top to bottom, `channels` interleaved (1 = gray, 3 = RGB).
struct Image {
  int width = 0, height = 0, channels = 1;
  std::vector<uint8_t> pixels;
};

// PNG bytes of `img`, with a tEXt chunk (keyword, text) when keyword is not empty.
std::string encode_png(const Image& img, const std::string& keyword = "", const std::string& text = "");
// The tEXt chunks of PNG bytes (keyword -> text), for checks and `diffode info`.
std::vector<std::pair<std::string, std::string>> png_text_chunks(const std::string& png);

// The header of a float32 little-endian C-order .npy array of `shape`.
std::string npy_header(const std::vector<int64_t>& shape);

// A float32 C-order .npy file (as diffode writes them). Anything else is an InputError.
struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};
NpyArray read_npy(const std::filesystem::path& path);

}  // namespace diffode
