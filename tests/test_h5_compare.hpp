// Comparing two dalesim files dataset by dataset: the check behind "a merged (or resumed) file
// equals a single uninterrupted run's".
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "io/h5.hpp"

namespace dalesim::test {

// Damages a file as a flipped sector would: inverts the first 16 bytes of the object header of
// `object`, so that its metadata checksum no longer matches (the file still opens).
inline void flip_object_header(const std::string& path, const std::string& object) {
  haddr_t header = 0;
  {
    const h5::File f = h5::File::open_read_only(path);
    H5O_info_t info{};
    ASSERT_GE(H5Oget_info_by_name2(f.id(), object.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT), 0);
    header = info.addr;
  }
  std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
  io.seekg(static_cast<std::streamoff>(header));
  char bytes[16];
  io.read(bytes, sizeof bytes);
  for (char& b : bytes) b = static_cast<char>(~b);
  io.seekp(static_cast<std::streamoff>(header));
  io.write(bytes, sizeof bytes);
}

// The two files hold the same groups and datasets, each of the same shape and the same bytes (as
// doubles, NaN payloads included; strings as strings). Root attributes are not compared. Returns
// the number of values compared.
inline std::size_t expect_same_datasets(const std::string& a_path, const std::string& b_path) {
  h5::silence_errors();
  const h5::File a = h5::File::open_read_only(a_path), b = h5::File::open_read_only(b_path);
  std::size_t n_values = 0;
  std::function<void(const h5::Location&, const h5::Location&, const std::string&)> walk =
      [&](const h5::Location& ga, const h5::Location& gb, const std::string& where) {
        ASSERT_EQ(ga.child_names(), gb.child_names()) << where;
        for (const std::string& name : ga.child_names()) {
          const std::string path = where + "/" + name;
          if (ga.is_group(name)) {
            walk(ga.open_group(name), gb.open_group(name), path);
            continue;
          }
          const h5::Dataset da = ga.open_dataset(name), db = gb.open_dataset(name);
          ASSERT_EQ(da.dims(), db.dims()) << path;
          if (da.type().type_class() == H5T_STRING) {
            EXPECT_EQ(da.read_strings(), db.read_strings()) << path;
            continue;
          }
          const std::vector<double> va = da.read_doubles(), vb = db.read_doubles();
          n_values += va.size();
          for (std::size_t i = 0; i < va.size(); ++i)
            if (std::memcmp(&va[i], &vb[i], sizeof(double)) != 0) {
              ADD_FAILURE() << path << "[" << i << "]: " << va[i] << " vs " << vb[i] << " (" << a_path << " vs "
                            << b_path << ")";
              break;
            }
        }
      };
  walk(a, b, "");
  return n_values;
}

}  // namespace dalesim::test
