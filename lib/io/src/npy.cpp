#include "diffode/io/npy.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/io/atomic_file.hpp"

namespace diffode {

namespace fs = std::filesystem;

void write_npy(const fs::path& path, const std::vector<int64_t>& shape, const float* data) {
  size_t values = 1;
  for (auto d : shape) values *= static_cast<size_t>(d);
  AtomicFile f(path);
  f.write(npy_header(shape));
  f.write(data, values * sizeof(float));
  f.commit();
}

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

namespace {

// A cursor over the header's dict literal; every refusal names the file and the offset.
struct DictReader {
  const std::string& text;
  const std::string& where;
  size_t at = 0;

  // One line: bytes other than printable ASCII are shown as '?'.
  [[noreturn]] void fail(const std::string& what) const {
    std::string shown = what + (at < text.size() ? ", at '" + text.substr(at, 24) + "'" : ", at the end");
    for (char& c : shown)
      if (c < 0x20 || c > 0x7e) c = '?';
    throw InputError(where + ": header at byte " + std::to_string(at) + ": " + shown);
  }
  void skip_space() {
    while (at < text.size() && std::string(" \t\r\n").find(text[at]) != std::string::npos) ++at;
  }
  bool take(char c) {
    skip_space();
    if (at < text.size() && text[at] == c) return ++at, true;
    return false;
  }
  void expect(char c, const char* what) {
    if (!take(c)) fail(std::string("expected ") + what);
  }
  // A quoted string with no escapes ('...' or "...").
  std::string string_literal() {
    skip_space();
    if (at >= text.size() || (text[at] != '\'' && text[at] != '"')) fail("expected a quoted string");
    const char quote = text[at++];
    const size_t end = text.find(quote, at);
    if (end == std::string::npos) fail("unterminated string");
    std::string s = text.substr(at, end - at);
    if (s.find_first_of("\\\n") != std::string::npos) fail("a string with an escape or line break");
    at = end + 1;
    return s;
  }
  std::string word() {
    skip_space();
    const size_t start = at;
    while (at < text.size() && std::isalnum(static_cast<unsigned char>(text[at]))) ++at;
    return text.substr(start, at - start);
  }
  // Up to the next separator (a shape entry as written, for messages).
  std::string entry() {
    skip_space();
    const size_t start = at;
    while (at < text.size() && std::string(",)} \t\r\n").find(text[at]) == std::string::npos) ++at;
    return text.substr(start, at - start);
  }
  // A tuple of non-negative integers: (), (n,), (n, m), (n, m,) ...
  std::vector<int64_t> size_tuple() {
    expect('(', "a tuple of sizes '(...)' as the shape: is not a list of sizes");
    std::vector<int64_t> dims;
    bool comma = false;
    while (!take(')')) {
      if (!dims.empty() && !comma) fail("expected ',' or ')' in the shape: is not a list of sizes");
      const std::string d = entry();
      if (d.empty() || d.size() > 18 || d.find_first_not_of("0123456789") != std::string::npos ||
          (d.size() > 1 && d[0] == '0'))
        fail("shape entry '" + text_excerpt(d) + "' is not a size: is not a list of sizes");
      dims.push_back(std::stoll(d));
      comma = take(',');
    }
    if (dims.size() == 1 && !comma) fail("(n) is a number, not a tuple: a 1-D shape is written (n,)");
    return dims;
  }
};

}  // namespace

std::vector<int64_t> parse_npy_header(const std::string& header, const std::string& where) {
  DictReader r{header, where};
  r.expect('{', "'{'");
  bool descr = false, order = false, shape = false;
  std::vector<int64_t> dims;
  while (!r.take('}')) {
    r.skip_space();
    const size_t key_at = r.at;
    const std::string key = r.string_literal();
    r.expect(':', "':' after a key");
    r.skip_space();
    const size_t value_at = r.at;
    r.at = key_at;  // messages about the key point at it
    bool* seen = key == "descr" ? &descr : key == "fortran_order" ? &order : key == "shape" ? &shape : nullptr;
    if (!seen) r.fail("unknown key '" + text_excerpt(key) + "' (an .npy header has descr, fortran_order, shape)");
    if (*seen) r.fail("key '" + key + "' given twice");
    *seen = true;
    r.at = value_at;
    if (key == "descr") {
      const std::string d = r.string_literal();
      if (d != "<f4") {
        r.at = value_at;
        r.fail("descr '" + text_excerpt(d) + "': expected float32 ('<f4')");
      }
    } else if (key == "fortran_order") {
      const std::string v = r.word();
      if (v != "False") {
        r.at = value_at;
        r.fail("fortran_order " + text_excerpt(v) + ": expected False (C order)");
      }
    } else {
      dims = r.size_tuple();
    }
    if (!r.take(',')) {
      r.expect('}', "',' or '}' after a value");
      break;
    }
  }
  r.skip_space();
  if (r.at != header.size()) r.fail("text after the dict");
  if (!descr || !order || !shape)
    r.fail(std::string("missing key '") + (!descr ? "descr" : !order ? "fortran_order" : "shape") + "'");
  return dims;
}

NpyArray read_npy(const fs::path& path) {
  const std::string where = "array " + path.string();
  if (const std::string problem = input_file_problem(path); !problem.empty()) throw InputError(where + ": " + problem);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(where + ": " + (fs::exists(path) ? "cannot be read" : "does not exist"));
  char pre[10];
  if (!in.read(pre, 10) || std::string(pre, 6) != "\x93NUMPY") throw InputError(where + ": not an .npy file");
  if (pre[6] != 1 || pre[7] != 0)
    throw InputError(where + ": is a version " + std::to_string(static_cast<uint8_t>(pre[6])) + "." +
                     std::to_string(static_cast<uint8_t>(pre[7])) +
                     " .npy file; diffode reads version 1.0 (its header length is 2 bytes, at most 65535; numpy "
                     "writes 1.0 unless the header needs more)");
  const size_t len = static_cast<uint8_t>(pre[8]) | static_cast<size_t>(static_cast<uint8_t>(pre[9])) << 8;
  std::string header(len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(len))) throw InputError(where + ": truncated header");
  NpyArray a;
  a.shape = parse_npy_header(header, where);
  std::string shape_text = "'shape': (";
  for (size_t i = 0; i < a.shape.size(); ++i) shape_text += (i ? ", " : "") + std::to_string(a.shape[i]);
  shape_text += a.shape.size() == 1 ? ",)" : ")";
  size_t total = 1;
  for (int64_t d : a.shape)
    if (__builtin_mul_overflow(total, static_cast<size_t>(d), &total))
      throw InputError(where + ": header shape " + text_excerpt(shape_text) + " has more values than memory can hold");
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
}  // namespace diffode
