// Files (DESIGN.md §8): sha256, PNG with a tEXt chunk, .npy headers, atomic writes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/io/png.hpp"
#include "test_util.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wpedantic"
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace {

using diffode::AtomicFile;
using diffode::Image;
using diffode::test::TempDir;
namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_raw(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

uint32_t be32(const std::string& s, size_t at) {
  return uint32_t(uint8_t(s[at])) << 24 | uint32_t(uint8_t(s[at + 1])) << 16 | uint32_t(uint8_t(s[at + 2])) << 8 |
         uint32_t(uint8_t(s[at + 3]));
}

// CRC-32 (ISO 3309 / PNG), bit by bit: independent of the library's table version.
uint32_t crc32_bitwise(const std::string& bytes) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

struct Chunk {
  std::string type, data;
  uint32_t crc;
};

std::vector<Chunk> chunks_of(const std::string& png) {
  std::vector<Chunk> out;
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint32_t len = be32(png, at);
    if (at + 12 + len > png.size()) {
      ADD_FAILURE() << "chunk at " << at << " runs past the end";
      break;
    }
    out.push_back({png.substr(at + 4, 4), png.substr(at + 8, len), be32(png, at + 8 + len)});
    at += 12 + len;
  }
  EXPECT_EQ(at, png.size()) << "trailing bytes after the last chunk";
  return out;
}

const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);

// A small RGB test image with a distinct value per byte.
Image test_image(int w, int h, int channels) {
  Image img{w, h, channels, {}};
  for (int i = 0; i < w * h * channels; ++i) img.pixels.push_back(static_cast<uint8_t>((i * 37 + 11) % 256));
  return img;
}

// ---------------------------------------------------------------- sha256

TEST(Sha256, FipsVectors) {
  // FIPS 180-2 appendix B: one block, two blocks (448-bit message), and the empty string.
  EXPECT_EQ(diffode::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(diffode::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(diffode::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(diffode::sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256, MillionAs) {
  EXPECT_EQ(diffode::sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, BytesAboveAsciiAndNul) {
  // sha256 of the bytes 0x00..0xff (as computed by coreutils sha256sum).
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(diffode::sha256_hex(all), "40aff2e9d2d8922e47afd4648e6967497158785fbd1da870e7110266bf944880");
}

TEST(Sha256, FileEqualsHexOfItsBytesAtBlockBoundaries) {
  TempDir tmp;
  // Padding edge cases (55/56/64 bytes) and the 64 KiB read buffer.
  for (size_t n : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 65535, 65536, 65537, 200000}) {
    std::string bytes;
    for (size_t i = 0; i < n; ++i) bytes.push_back(static_cast<char>((i * 131 + n) % 251));
    const fs::path p = tmp.path / ("f" + std::to_string(n));
    write_raw(p, bytes);
    EXPECT_EQ(diffode::sha256_file(p), diffode::sha256_hex(bytes)) << n << " bytes";
  }
}

TEST(Sha256, FileMatchesCoreutils) {
  if (std::system("command -v sha256sum >/dev/null 2>&1") != 0) GTEST_SKIP() << "no sha256sum";
  const fs::path model = diffode::test::model_path("gauss.pt");
  FILE* p = ::popen(("sha256sum '" + model.string() + "'").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[65] = {};
  ASSERT_EQ(std::fread(buf, 1, 64, p), 64u);
  ::pclose(p);
  EXPECT_EQ(diffode::sha256_file(model), std::string(buf, 64));
}

TEST(Sha256, MissingFileIsAnInputErrorNamingIt) {
  TempDir tmp;
  const fs::path missing = tmp.path / "missing.bin";
  try {
    diffode::sha256_file(missing);
    FAIL() << "no exception";
  } catch (const diffode::InputError& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- PNG

TEST(Png, StartsWithTheSignatureAndIsWellFormed) {
  const std::string png = diffode::encode_png(test_image(5, 3, 3), "diffode", "{}");
  ASSERT_GE(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), kPngSignature);
  const auto chunks = chunks_of(png);
  ASSERT_GE(chunks.size(), 4u);
  EXPECT_EQ(chunks.front().type, "IHDR");
  EXPECT_EQ(chunks.back().type, "IEND");
  EXPECT_EQ(be32(chunks.front().data, 0), 5u);  // width
  EXPECT_EQ(be32(chunks.front().data, 4), 3u);  // height
  for (const auto& c : chunks) EXPECT_EQ(c.crc, crc32_bitwise(c.type + c.data)) << "chunk " << c.type;
}

TEST(Png, TextChunkHasKeywordNulTextAndACorrectCrc) {
  const std::string text = R"({"run": {"nfe": 5, "sigmas": [80.0, 0.002], "name": "a b\tc"}})";
  const std::string png = diffode::encode_png(test_image(4, 4, 1), "diffode", text);
  int found = 0;
  for (const auto& c : chunks_of(png)) {
    if (c.type != "tEXt") continue;
    ++found;
    EXPECT_EQ(c.data, std::string("diffode") + '\0' + text);
    EXPECT_EQ(c.crc, crc32_bitwise("tEXt" + c.data));
  }
  EXPECT_EQ(found, 1);
}

TEST(Png, CrcOfAKnownString) {
  // The check value of CRC-32: crc32("123456789") = 0xcbf43926, as a sanity check of the helper.
  EXPECT_EQ(crc32_bitwise("123456789"), 0xcbf43926u);
}

TEST(Png, TextRoundTripsThroughPngTextChunks) {
  const nlohmann::json run = {{"model", {{"sha256", std::string(64, 'a')}}},
                              {"nfe", 10},
                              {"schedule", {{"sigmas", {80.0, 1.5, 0.002}}}},
                              {"quote", "it's \"quoted\""}};
  const std::string png = diffode::encode_png(test_image(8, 6, 3), "diffode", run.dump());
  const auto texts = diffode::png_text_chunks(png);
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(texts[0].first, "diffode");
  EXPECT_EQ(nlohmann::json::parse(texts[0].second), run);
}

TEST(Png, LargeTextRoundTrips) {
  const std::string text(100000, 'x');
  const auto texts = diffode::png_text_chunks(diffode::encode_png(test_image(2, 2, 1), "k", text));
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(texts[0].second, text);
}

TEST(Png, EmptyTextIsKept) {
  const auto texts = diffode::png_text_chunks(diffode::encode_png(test_image(2, 2, 1), "k", ""));
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(texts[0].first, "k");
  EXPECT_EQ(texts[0].second, "");
}

TEST(Png, NoKeywordMeansNoTextChunk) {
  const std::string png = diffode::encode_png(test_image(3, 3, 3));
  EXPECT_EQ(png.substr(0, 8), kPngSignature);
  EXPECT_TRUE(diffode::png_text_chunks(png).empty());
  for (const auto& c : chunks_of(png)) EXPECT_NE(c.type, "tEXt");
}

TEST(Png, PixelsDecodeBackExactly) {
  for (int channels : {1, 3}) {
    SCOPED_TRACE(channels);
    const Image img = test_image(7, 5, channels);
    const std::string png = diffode::encode_png(img, "diffode", R"({"a": 1})");
    int w = 0, h = 0, c = 0;
    unsigned char* px = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()),
                                              static_cast<int>(png.size()), &w, &h, &c, 0);
    ASSERT_NE(px, nullptr) << stbi_failure_reason();
    EXPECT_EQ(w, 7);
    EXPECT_EQ(h, 5);
    EXPECT_EQ(c, channels);
    EXPECT_EQ(std::vector<uint8_t>(px, px + w * h * c), img.pixels);
    stbi_image_free(px);
  }
}

// Cut anywhere, the bytes give the tEXt chunk exactly when it is whole in them, and nothing
// else; bytes that are not a PNG give none.
TEST(Png, TextChunksOfTruncatedOrForeignBytesDoNotCrash) {
  const std::string text(300, 'j');
  const std::string png = diffode::encode_png(test_image(4, 4, 3), "diffode", text);
  EXPECT_TRUE(diffode::png_text_chunks("").empty());
  EXPECT_TRUE(diffode::png_text_chunks("not a png at all").empty());
  // Where the tEXt chunk ends: after the signature, the chunks up to and including it.
  size_t text_end = 8;
  int text_chunks = 0;
  for (const auto& c : chunks_of(png)) {
    text_end += 12 + c.data.size();
    if (c.type == "tEXt") {
      ++text_chunks;
      break;
    }
  }
  ASSERT_EQ(text_chunks, 1);
  ASSERT_GE(text_end, size_t{8 + 25 + 12 + 7 + 1 + 300});  // after IHDR (25 bytes): "diffode", NUL, the text
  for (size_t cut : {size_t{8}, size_t{20}, size_t{33}, size_t{40}, size_t{100}, text_end - 1, text_end,
                     text_end + 1, png.size() - 1, png.size()}) {
    const auto texts = diffode::png_text_chunks(png.substr(0, cut));
    const size_t expected = cut >= text_end ? 1 : 0;
    ASSERT_EQ(texts.size(), expected) << "cut at " << cut << " of " << png.size();
    if (expected) {
      EXPECT_EQ(texts[0].first, "diffode") << cut;
      EXPECT_EQ(texts[0].second, text) << cut;
    }
  }
}

// ---------------------------------------------------------------- npy

// Parses an npy v1.0 header: the dict text and the header length.
struct NpyHeader {
  size_t total;
  std::string dict;
};

NpyHeader parse_npy(const std::string& h) {
  EXPECT_GE(h.size(), 10u);
  EXPECT_EQ(h.substr(0, 6), std::string("\x93NUMPY", 6));
  EXPECT_EQ(h[6], '\x01');
  EXPECT_EQ(h[7], '\x00');
  const size_t len = uint8_t(h[8]) | size_t(uint8_t(h[9])) << 8;
  return {10 + len, h.substr(10, len)};
}

std::vector<int64_t> shape_of(const std::string& dict) {
  EXPECT_NE(dict.find("'shape': ("), std::string::npos) << dict;
  return diffode::test::npy_dict_shape(dict);
}

TEST(Npy, HeaderIsAMultipleOf64AndEndsInNewline) {
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{
           {5}, {0}, {64, 2}, {16, 3, 8, 8}, {123456789, 1, 28, 28}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}) {
    const std::string h = diffode::npy_header(shape);
    SCOPED_TRACE(h);
    EXPECT_EQ(h.size() % 64, 0u);
    const NpyHeader p = parse_npy(h);
    EXPECT_EQ(p.total, h.size());
    EXPECT_EQ(h.back(), '\n');
    EXPECT_EQ(shape_of(p.dict), shape);
  }
}

TEST(Npy, OneDimensionalShapeHasATrailingComma) {
  const NpyHeader p = parse_npy(diffode::npy_header({5}));
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }";
  EXPECT_EQ(p.dict.rfind(dict, 0), 0u) << p.dict;
  EXPECT_EQ(p.dict.find_first_not_of(' ', dict.size()), p.dict.size() - 1);  // only spaces, then '\n'
}

TEST(Npy, FourDimensionalShape) {
  const NpyHeader p = parse_npy(diffode::npy_header({16, 3, 8, 8}));
  EXPECT_EQ(p.dict.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (16, 3, 8, 8), }", 0), 0u) << p.dict;
  EXPECT_EQ(p.dict.substr(p.dict.size() - 1), "\n");
}

// A header claiming more values than the file holds (or than memory can) is refused before
// anything is allocated; a shape that is not a list of sizes is refused by name.
TEST(Npy, ReadRefusesShapesTheFileCannotHold) {
  TempDir tmp;
  auto with_header = [&](const std::string& shape) {
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
    dict += std::string(63 - (10 + dict.size()) % 64, ' ') + "\n";
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(dict.size() & 0xff);
    bytes += static_cast<char>(dict.size() >> 8);
    const fs::path f = tmp.path / "a.npy";
    std::ofstream(f, std::ios::binary) << bytes << dict << std::string(64, '\0');
    try {
      diffode::read_npy(f);
    } catch (const diffode::InputError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(with_header("(4294967296, 4294967296, 16)").find("has more values than memory can hold"), std::string::npos);
  EXPECT_NE(with_header("(1000000000000, 4)").find("holds fewer values than its shape 'shape': (1000000000000, 4) says"),
            std::string::npos) << with_header("(1000000000000, 4)");
  EXPECT_NE(with_header("(-1, 4)").find("is not a list of sizes"), std::string::npos);
  EXPECT_NE(with_header("(2, x)").find("is not a list of sizes"), std::string::npos);
  EXPECT_EQ(with_header("(4, 4)"), "accepted");
}

// The header is read as the Python dict literal it is, not searched for substrings: text
// inside a string value, a repeated key or an unknown key never decides what is read.
TEST(Npy, HeaderIsParsedAsADictLiteral) {
  TempDir tmp;
  const fs::path f = tmp.path / "a.npy";
  auto read = [&](const std::string& dict, char major = 1) {
    std::string bytes = std::string("\x93NUMPY", 6) + major + '\0';
    bytes += static_cast<char>((dict.size() + 1) & 0xff);
    bytes += static_cast<char>((dict.size() + 1) >> 8);
    std::ofstream(f, std::ios::binary) << bytes << dict << '\n' << std::string(64, '\0');
    try {
      const diffode::NpyArray a = diffode::read_npy(f);
      std::string shape = "shape";
      for (int64_t d : a.shape) shape += " " + std::to_string(d);
      return shape;
    } catch (const diffode::InputError& e) {
      return std::string(e.what());
    }
  };
  const std::string where = "array " + f.string() + ": ";
  const std::string in_string = read("{'descr': '<f4', 'x': \"'shape': (2,)\", 'fortran_order': False, 'shape': (4,)}");
  EXPECT_EQ(in_string.rfind(where + "header at byte 17: unknown key 'x'", 0), 0u) << in_string;
  const std::string fortran = read("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), 'y': 'fortran_order: False'}");
  EXPECT_EQ(fortran.rfind(where + "header at byte 34: fortran_order True: expected False (C order)", 0), 0u) << fortran;
  const std::string twice = read("{'descr': '<f4', 'fortran_order': False, 'fortran_order': False, 'shape': (2,)}");
  EXPECT_NE(twice.find("key 'fortran_order' given twice"), std::string::npos) << twice;
  EXPECT_NE(read("{'descr': '<f4', 'shape': (2,)}").find("missing key 'fortran_order'"), std::string::npos);
  EXPECT_NE(read("{'descr': '<f8', 'fortran_order': False, 'shape': (2,)}").find("descr '<f8': expected float32"),
            std::string::npos);
  EXPECT_NE(read("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}").find("a 1-D shape is written (n,)"),
            std::string::npos);
  EXPECT_NE(read("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x").find("text after the dict"),
            std::string::npos);
  EXPECT_NE(read("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 02)}").find("'02' is not a size"),
            std::string::npos);
  // Versions 2.0 and 3.0 (4-byte header lengths) are refused by name.
  EXPECT_NE(read("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 2).find("is a version 2.0 .npy file"),
            std::string::npos);
  // What numpy may write: other key orders, double quotes, no trailing comma, a 0-d shape.
  EXPECT_EQ(read("{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<f4\"}"), "shape 2 3");
  EXPECT_EQ(read("{'descr': '<f4', 'fortran_order': False, 'shape': (3, ), }"), "shape 3");
  EXPECT_EQ(read("{'descr':'<f4','fortran_order':False,'shape':()}"), "shape");
  EXPECT_EQ(diffode::parse_npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (16, 3, 8, 8), }  \n", "h"),
            (std::vector<int64_t>{16, 3, 8, 8}));
}

// ---------------------------------------------------------------- atomic files

TEST(AtomicFile, UncommittedLeavesNoFileAndNoTemporary) {
  TempDir tmp;
  {
    AtomicFile f(tmp.path / "out.bin");
    f.write("partial data");
    EXPECT_FALSE(fs::exists(tmp.path / "out.bin"));
    EXPECT_EQ(names_in(tmp.path).size(), 1u);  // the temporary, while it is open
  }
  EXPECT_TRUE(names_in(tmp.path).empty());
}

TEST(AtomicFile, UncommittedDoesNotTouchAnExistingFile) {
  TempDir tmp;
  write_raw(tmp.path / "out.bin", "old");
  {
    AtomicFile f(tmp.path / "out.bin");
    f.write("new");
  }
  EXPECT_EQ(read_file(tmp.path / "out.bin"), "old");
  EXPECT_EQ(names_in(tmp.path), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFile, ExceptionBeforeCommitLeavesNothing) {
  TempDir tmp;
  try {
    AtomicFile f(tmp.path / "out.bin");
    f.write("abc");
    throw std::runtime_error("interrupted");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(names_in(tmp.path).empty());
}

TEST(AtomicFile, TemporaryIsInTheSameFolderAndCommitRenamesIt) {
  TempDir tmp;
  const fs::path target = tmp.path / "out.bin";
  AtomicFile f(target);
  EXPECT_EQ(f.path(), target);
  f.write("hello ");
  f.write(std::string("world\0!", 7));
  const auto during = names_in(tmp.path);
  ASSERT_EQ(during.size(), 1u);
  EXPECT_EQ(during[0].rfind("out.bin.tmp-", 0), 0u) << during[0];
  f.commit();
  EXPECT_EQ(names_in(tmp.path), std::vector<std::string>{"out.bin"});
  EXPECT_EQ(read_file(target), std::string("hello world\0!", 13));
}

TEST(AtomicFile, CommitReplacesAnExistingFile) {
  TempDir tmp;
  write_raw(tmp.path / "out.bin", "old contents, longer than the new");
  {
    AtomicFile f(tmp.path / "out.bin");
    f.write("new");
    f.commit();
  }
  EXPECT_EQ(read_file(tmp.path / "out.bin"), "new");
  EXPECT_EQ(names_in(tmp.path), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFile, EmptyCommitWritesAnEmptyFile) {
  TempDir tmp;
  {
    AtomicFile f(tmp.path / "empty");
    f.commit();
  }
  ASSERT_TRUE(fs::exists(tmp.path / "empty"));
  EXPECT_EQ(fs::file_size(tmp.path / "empty"), 0u);
}

TEST(AtomicFile, WriteAfterCommitThrows) {
  TempDir tmp;
  AtomicFile f(tmp.path / "out.bin");
  f.commit();
  EXPECT_THROW(f.write("x"), std::logic_error);
}

TEST(AtomicFile, WriteFileAtomicWritesTheBytes) {
  TempDir tmp;
  std::string bytes;
  for (int i = 0; i < 100000; ++i) bytes.push_back(static_cast<char>(i % 256));
  diffode::write_file_atomic(tmp.path / "data.bin", bytes);
  EXPECT_EQ(read_file(tmp.path / "data.bin"), bytes);
  EXPECT_EQ(names_in(tmp.path), std::vector<std::string>{"data.bin"});
}

TEST(AtomicFile, WriteFileAtomicIntoAMissingDirectoryThrowsNamingIt) {
  TempDir tmp;
  const fs::path target = tmp.path / "no" / "such" / "dir" / "out.bin";
  try {
    diffode::write_file_atomic(target, "x");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((tmp.path / "no" / "such" / "dir").string()), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.path / "no"));
  EXPECT_TRUE(names_in(tmp.path).empty());
}

TEST(AtomicFile, OpeningUnderARegularFileThrows) {
  TempDir tmp;
  write_raw(tmp.path / "file.txt", "I am a file");
  EXPECT_THROW(AtomicFile(tmp.path / "file.txt" / "out.bin"), std::runtime_error);
  EXPECT_EQ(read_file(tmp.path / "file.txt"), "I am a file");
}

}  // namespace

// A directory where a file is to go is the user's input, named; nothing is written.
TEST(AtomicFile, ADirectoryAtThePathIsRefusedByName) {
  TempDir tmp;
  fs::create_directories(tmp.path / "d" / "inner");
  try {
    diffode::write_file_atomic(tmp.path / "d", "x");
    FAIL() << "no error";
  } catch (const diffode::InputError& e) {
    EXPECT_EQ(std::string(e.what()), (tmp.path / "d").string() + " is a directory: give a file name to write to");
  }
  EXPECT_EQ(names_in(tmp.path), std::vector<std::string>{"d"});
  EXPECT_EQ(names_in(tmp.path / "d"), std::vector<std::string>{"inner"});
}
