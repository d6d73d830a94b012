// IDX reading and writing through zlib's gz* functions, which read plain and gzipped files alike.
#include "tasks/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "dalesim/config.hpp"

namespace dalesim {

namespace {

constexpr std::uint64_t kMaxBytes = std::uint64_t{1} << 32;  // a corrupt header must not allocate more

std::string hex_bytes(const unsigned char* b, int n) {
  std::string out;
  char buf[4];
  for (int k = 0; k < n; ++k) {
    std::snprintf(buf, sizeof buf, "%s%02x", k ? " " : "", b[k]);
    out += buf;
  }
  return out;
}

const char* type_name(unsigned char code) {
  switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
  }
}

// Owns a gzFile.
struct GzFile {
  gzFile f = nullptr;
  ~GzFile() {
    if (f) gzclose(f);
  }
};

// Reads up to n bytes; returns how many were read. Throws on a corrupt stream.
std::uint64_t read_some(gzFile f, unsigned char* dst, std::uint64_t n, const std::string& path) {
  std::uint64_t done = 0;
  while (done < n) {
    const unsigned want = static_cast<unsigned>(std::min<std::uint64_t>(n - done, 1u << 30));
    const int got = gzread(f, dst + done, want);
    if (got < 0) {
      int code = Z_OK;
      const char* msg = gzerror(f, &code);
      if (code == Z_BUF_ERROR) break;  // the gzip stream ends early: truncated, reported by the caller
      throw InputError("IDX file " + path + ": corrupt gzip data (" + (msg ? msg : "zlib error") + ")");
    }
    done += static_cast<unsigned>(got);
    if (got == 0 || static_cast<unsigned>(got) < want) {
      int code = Z_OK;
      const char* msg = gzerror(f, &code);
      if (code != Z_OK && code != Z_BUF_ERROR)
        throw InputError("IDX file " + path + ": corrupt gzip data (" + (msg ? msg : "zlib error") + ")");
      break;
    }
  }
  return done;
}

}  // namespace

IdxArray read_idx(const std::string& path, int rank) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw InputError("IDX file " + path + (std::filesystem::exists(path, ec) ? " is not a regular file" : " does not exist"));
  GzFile gz;
  gz.f = gzopen(path.c_str(), "rb");
  if (!gz.f) throw InputError("cannot open IDX file " + path + ": " + std::strerror(errno));
  gzbuffer(gz.f, 1 << 17);

  unsigned char magic[4] = {0, 0, 0, 0};
  const std::uint64_t n_magic = read_some(gz.f, magic, 4, path);
  if (n_magic < 4)
    throw InputError("IDX file " + path + " is truncated: " + std::to_string(n_magic) +
                     " bytes, shorter than the 4-byte magic (00 00 08 <rank>)");
  if (magic[0] != 0 || magic[1] != 0)
    throw InputError("IDX file " + path + " has the wrong magic " + hex_bytes(magic, 4) +
                     ": expected 00 00 08 <rank> (an MNIST-style IDX file, gzipped or not)");
  if (magic[2] != 0x08)
    throw InputError("IDX file " + path + " holds elements of type 0x" + hex_bytes(magic + 2, 1) + " (" +
                     type_name(magic[2]) + "): expected 0x08 (unsigned byte), as MNIST images and labels");
  if (magic[3] < 1 || (rank > 0 && magic[3] != rank))
    throw InputError("IDX file " + path + " has rank " + std::to_string(magic[3]) + ": expected " +
                     (rank > 0 ? std::to_string(rank) + (rank == 3 ? " (images: count x rows x cols)" : " (labels)")
                               : std::string("at least 1")));

  IdxArray a;
  std::vector<unsigned char> dim_bytes(4 * static_cast<std::size_t>(magic[3]));
  if (read_some(gz.f, dim_bytes.data(), dim_bytes.size(), path) < dim_bytes.size())
    throw InputError("IDX file " + path + " is truncated inside its header of " + std::to_string(magic[3]) +
                     " dimensions");
  std::uint64_t total = 1;
  std::string shape;
  for (int k = 0; k < magic[3]; ++k) {
    const unsigned char* d = &dim_bytes[4 * static_cast<std::size_t>(k)];
    const std::uint32_t n = (std::uint32_t{d[0]} << 24) | (std::uint32_t{d[1]} << 16) | (std::uint32_t{d[2]} << 8) | d[3];
    a.dims.push_back(n);
    shape += (k ? " x " : "") + std::to_string(n);
    total *= n;
    if (total > kMaxBytes)
      throw InputError("IDX file " + path + " declares a shape beginning " + shape + ", more than " +
                       std::to_string(kMaxBytes) + " bytes: a corrupt header?");
  }
  a.data.resize(total);
  const std::uint64_t got = read_some(gz.f, a.data.data(), total, path);
  if (got < total)
    throw InputError("IDX file " + path + " is truncated: its header declares " + shape + " = " +
                     std::to_string(total) + " bytes of data, the file holds " + std::to_string(got));
  unsigned char extra;
  if (read_some(gz.f, &extra, 1, path) != 0)
    throw InputError("IDX file " + path + " has bytes beyond the " + shape + " its header declares");
  return a;
}

void write_idx(const std::string& path, const IdxArray& a, bool gzip) {
  GzFile gz;
  gz.f = gzopen(path.c_str(), gzip ? "wb6" : "wbT");  // T: transparent (plain) writing
  if (!gz.f) throw std::runtime_error("cannot create IDX file " + path + ": " + std::strerror(errno));
  std::vector<unsigned char> head = {0, 0, 0x08, static_cast<unsigned char>(a.dims.size())};
  for (std::uint32_t d : a.dims)
    for (int s = 24; s >= 0; s -= 8) head.push_back(static_cast<unsigned char>(d >> s));
  const bool ok = gzwrite(gz.f, head.data(), static_cast<unsigned>(head.size())) == static_cast<int>(head.size()) &&
                  (a.data.empty() || gzwrite(gz.f, a.data.data(), static_cast<unsigned>(a.data.size())) ==
                                         static_cast<int>(a.data.size()));
  const int closed = gzclose(gz.f);
  gz.f = nullptr;
  if (!ok || closed != Z_OK) throw std::runtime_error("cannot write IDX file " + path);
}

}  // namespace dalesim
