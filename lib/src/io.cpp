#include "diffode/io.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "diffode/error.hpp"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace diffode {

namespace fs = std::filesystem;

// ---- SHA-256 (FIPS 180-4) ----
namespace {

class Sha256 {
 public:
  void update(const uint8_t* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      block_[fill_++] = data[i];
      if (fill_ == 64) {
        compress();
        fill_ = 0;
      }
    }
    bits_ += static_cast<uint64_t>(n) * 8;
  }
  std::string hex() {
    const uint64_t bits = bits_;
    const uint8_t one = 0x80, zero = 0;
    update(&one, 1);
    while (fill_ != 56) update(&zero, 1);
    for (int i = 7; i >= 0; --i) {
      const uint8_t b = static_cast<uint8_t>(bits >> (8 * i));
      update(&b, 1);
    }
    std::ostringstream out;
    for (uint32_t v : h_) {
      char buf[9];
      std::snprintf(buf, sizeof buf, "%08x", v);
      out << buf;
    }
    return out.str();
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void compress() {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = uint32_t(block_[4 * i]) << 24 | uint32_t(block_[4 * i + 1]) << 16 | uint32_t(block_[4 * i + 2]) << 8 |
             uint32_t(block_[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    const uint32_t add[8] = {a, b, c, d, e, f, g, h};
    for (int i = 0; i < 8; ++i) h_[i] += add[i];
  }
  std::array<uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t block_[64] = {};
  size_t fill_ = 0;
  uint64_t bits_ = 0;
};

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void put_u32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t get_u32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(s[at + i]);
  return v;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

std::string sha256_hex(const std::string& bytes) {
  Sha256 h;
  h.update(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return h.hex();
}

std::string sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot be read");
  Sha256 h;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(reinterpret_cast<const uint8_t*>(buf.data()), static_cast<size_t>(in.gcount()));
  }
  return h.hex();
}

// ---- atomic files ----

AtomicFile::AtomicFile(fs::path path) : path_(std::move(path)) {
  std::error_code dir_ec;
  if (fs::is_directory(path_, dir_ec))
    throw InputError(path_.string() + " is a directory: give a file name to write to");
  std::random_device rd;
  tmp_ = path_;
  tmp_ += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000);
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

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

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

void write_npy(const fs::path& path, const std::vector<int64_t>& shape, const float* data) {
  size_t values = 1;
  for (auto d : shape) values *= static_cast<size_t>(d);
  AtomicFile f(path);
  f.write(npy_header(shape));
  f.write(data, values * sizeof(float));
  f.commit();
}

std::string input_file_problem(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) return "file does not exist";
  if (ec) return "cannot be examined: " + ec.message();
  if (st.type() == fs::file_type::directory) return "is a directory";
  if (st.type() != fs::file_type::regular) return "is not a regular file (a FIFO, socket or device would block or mislead)";
  return "";
}

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    return parse_bounded_json(buf.str());
  } catch (const std::exception&) {  // malformed, too deep, a repeated key or a number out of range
    return nullptr;
  }
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

// ---- PNG ----

std::string encode_png(const Image& img, const std::string& keyword, const std::string& text) {
  std::string png;
  auto sink = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(sink, &png, img.width, img.height, img.channels, img.pixels.data(),
                              img.width * img.channels))
    throw std::runtime_error("PNG encoding failed");
  if (keyword.empty()) return png;
  // A tEXt chunk right after IHDR (8-byte signature + 25-byte IHDR chunk).
  std::string body = keyword;
  body.push_back('\0');
  body += text;
  std::string chunk;
  put_u32(chunk, static_cast<uint32_t>(body.size()));
  const std::string typed = "tEXt" + body;
  chunk += typed;
  put_u32(chunk, crc32(reinterpret_cast<const uint8_t*>(typed.data()), typed.size()));
  png.insert(8 + 25, chunk);
  return png;
}

std::vector<std::pair<std::string, std::string>> png_text_chunks(const std::string& png) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint32_t len = get_u32(png, at);
    if (at + 12 + len > png.size()) break;
    const std::string type = png.substr(at + 4, 4);
    if (type == "tEXt") {
      const std::string body = png.substr(at + 8, len);
      const auto nul = body.find('\0');
      if (nul != std::string::npos) out.emplace_back(body.substr(0, nul), body.substr(nul + 1));
    }
    at += 12 + len;
  }
  return out;
}

// ---- npy ----

std::string npy_header(const std::vector<int64_t>& shape) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + header length (2) + dict, padded with spaces to 64 bytes, ending in \n.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::string h = "\x93NUMPY";
  h.push_back('\x01');
  h.push_back('\x00');
  h.push_back(static_cast<char>(dict.size() & 0xff));
  h.push_back(static_cast<char>(dict.size() >> 8));
  return h + dict;
}

NpyArray read_npy(const fs::path& path) {
  const std::string where = "array " + path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(where + ": " + (fs::exists(path) ? "cannot be read" : "does not exist"));
  char pre[10];
  if (!in.read(pre, 10) || std::string(pre, 6) != "\x93NUMPY" || pre[6] != 1)
    throw InputError(where + ": not a version 1 .npy file");
  const size_t len = static_cast<uint8_t>(pre[8]) | static_cast<size_t>(static_cast<uint8_t>(pre[9])) << 8;
  std::string header(len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(len))) throw InputError(where + ": truncated header");
  if (header.find("'descr': '<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
    throw InputError(where + ": expected float32 ('<f4') in C order, header " + header);
  const auto open = header.find("'shape': (");
  const auto close = header.find(')', open);
  if (open == std::string::npos || close == std::string::npos) throw InputError(where + ": header has no shape");
  NpyArray a;
  const std::string shape_text = header.substr(open, close - open + 1);
  std::stringstream dims(header.substr(open + 10, close - open - 10));
  size_t total = 1;
  for (std::string d; std::getline(dims, d, ',');) {
    if (d.find_first_not_of(' ') == std::string::npos) continue;
    const auto digits = d.find_first_not_of(' ');
    const auto end = d.find_last_not_of(' ');
    const std::string dim = d.substr(digits, end - digits + 1);
    if (dim.empty() || dim.size() > 18 || dim.find_first_not_of("0123456789") != std::string::npos)
      throw InputError(where + ": header shape " + text_excerpt(shape_text) + " is not a list of sizes");
    a.shape.push_back(std::stoll(dim));
    if (__builtin_mul_overflow(total, static_cast<size_t>(a.shape.back()), &total))
      throw InputError(where + ": header shape " + text_excerpt(shape_text) + " has more values than memory can hold");
  }
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  const uintmax_t data_start = 10 + len;
  if (ec || total > (size - std::min(size, data_start)) / sizeof(float))
    throw InputError(where + ": holds fewer values than its shape " + text_excerpt(shape_text) + " says");
  a.data.resize(total);
  if (!in.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(total * sizeof(float))))
    throw InputError(where + ": holds fewer values than its shape " + text_excerpt(shape_text) + " says");
  return a;
}

namespace {

// Refusals of parse_bounded_json (their messages name what, not where).
struct JsonLimit : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

std::string json_excerpt(const nlohmann::json& value, size_t max_chars) {
  return text_excerpt(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), max_chars);
}

nlohmann::json parse_bounded_json(const std::string& text) {
  std::vector<std::vector<std::string>> keys;  // the keys of each open object, innermost last
  using Event = nlohmann::json::parse_event_t;
  const nlohmann::json::parser_callback_t check = [&](int depth, Event event, nlohmann::json& parsed) {
    if (depth > kMaxJsonDepth)
      throw JsonLimit("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    if (event == Event::object_start) keys.emplace_back();
    if (event == Event::object_end && !keys.empty()) keys.pop_back();
    if (event == Event::key && !keys.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      for (const std::string& seen : keys.back())
        if (seen == k) throw JsonLimit("the key " + json_excerpt(parsed, 200) + " appears twice in one object");
      keys.back().push_back(k);
    }
    return true;
  };
  return nlohmann::json::parse(text, check);
}

nlohmann::json parse_json_text(const std::string& text, const std::string& where) {
  try {
    return parse_bounded_json(text);
  } catch (const JsonLimit& e) {
    throw InputError(where + ": " + e.what());
  } catch (const nlohmann::json::out_of_range& e) {  // a number beyond double, e.g. 1e400
    std::string what = e.what();
    const auto pos = what.find("number overflow");
    throw InputError(where + ": " + (pos == std::string::npos ? what : what.substr(pos)) +
                     " (a number beyond the range of a double)");
  } catch (const nlohmann::json::parse_error& e) {
    size_t line = 1, col = 1;
    const size_t end = std::min<size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    const auto pos = what.find("syntax error");
    if (pos != std::string::npos) what = what.substr(pos);
    throw InputError(where + ":" + std::to_string(line) + ":" + std::to_string(col) + ": malformed JSON: " + what);
  }
}

}  // namespace diffode
