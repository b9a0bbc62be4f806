#pragma once
// How diffode reads what a user hands it, from the core up: the regular-file check, the
// SHA-256 that identifies a model or predictor file, and JSON text parsed with limits
// (diffode.json in a model archive, configs, records). Files diffode writes are io's.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace diffode {

// SHA-256 of a file's bytes, lowercase hex. Throws InputError if it cannot be read.
std::string sha256_file(const std::filesystem::path& path);
std::string sha256_hex(const std::string& bytes);

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

// The most bytes diffode reads from a JSON file (a config, statistics, a record): 256 MiB.
constexpr std::uintmax_t kMaxJsonFileBytes = std::uintmax_t{256} << 20;

// The bytes of an input file: InputError "<what> <path>: <problem>" when it is not a regular
// file (a FIFO would block, a device never end), cannot be read, or holds more than
// max_bytes (named in the message).
std::string read_input_file(const std::filesystem::path& path, const std::string& what,
                            std::uintmax_t max_bytes = kMaxJsonFileBytes);

// Whether `text` is well-formed UTF-8 (JSON text, and so every record diffode writes, must be).
bool valid_utf8(const std::string& text);

// A value for a message: its JSON text, cut to about max_chars.
std::string json_excerpt(const nlohmann::json& value, size_t max_chars = 200);


}  // namespace diffode
