// Reader of the IDX format of MNIST, Fashion-MNIST and KMNIST (unsigned-byte arrays), gzipped or
// not.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dalesim {

struct IdxArray {
  std::vector<std::uint32_t> dims;  // e.g. {60000, 28, 28}
  std::vector<std::uint8_t> data;   // C order
};

// Reads the IDX file at `path` (gzip is recognised by its content, not the name): magic bytes
// 00 00 08 <rank>, big-endian dimensions, then the bytes. Throws InputError naming the file and
// what was expected for a missing or unreadable file, a wrong magic, element type or rank (when
// `rank` > 0), a corrupt gzip stream, a truncated file, or bytes beyond the declared data.
IdxArray read_idx(const std::string& path, int rank = 0);

// Writes `a` as an IDX file, gzipped when `gzip` (for tests and for preparing data).
void write_idx(const std::string& path, const IdxArray& a, bool gzip);

}  // namespace dalesim
