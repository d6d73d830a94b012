// A thin RAII wrapper over the HDF5 C API: move-only handles, one checked wrapper per C call used.
// Failures throw std::runtime_error carrying the call, the object (file:/path), the source line and
// HDF5's own error stack; HDF5's automatic error printing is switched off. Destructors never throw.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dalesim::h5 {

using Dims = std::vector<hsize_t>;

// Switches off HDF5's printing of error stacks to stderr (we fold them into exceptions instead).
void silence_errors();

// Throws std::runtime_error describing the failed `call` on `object`, with HDF5's error stack.
[[noreturn]] void throw_error(const char* call, const std::string& object, const char* file, int line);

// The current HDF5 error stack as one line ("H5Fopen(): unable to open file; ..."), then cleared.
std::string error_stack_text();

// Owns one hid_t and closes it with the matching H5?close. Move-only.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*closer)(hid_t), std::string file, std::string path)
      : id_(id), closer_(closer), file_(std::move(file)), path_(std::move(path)) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept { *this = std::move(o); }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  const std::string& file_name() const { return file_; }
  const std::string& path() const { return path_; }
  std::string where() const { return file_ + ":" + path_; }  // for error messages
  void close();            // throws when HDF5 reports a failure (e.g. a full disk on H5Fclose)
  void reset() noexcept;   // closes, ignoring failures: for destructors and error paths

 protected:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*closer_)(hid_t) = nullptr;
  std::string file_, path_;
};

class Dataspace : public Handle {
 public:
  Dataspace() = default;
  static Dataspace scalar();
  static Dataspace simple(const Dims& dims);                      // fixed size
  static Dataspace simple(const Dims& dims, const Dims& max_dims);  // H5S_UNLIMITED allowed
  Dims dims() const;
  // Selects the block starting at `start` with `count` elements per axis.
  void select(const Dims& start, const Dims& count);

 private:
  using Handle::Handle;
  friend class Dataset;
  friend class Attribute;
};

// Property lists: dataset creation (chunks, filters), dataset access (chunk cache), file access,
// file and group creation (creation-order tracking).
class PropList : public Handle {
 public:
  PropList() = default;
  static PropList dataset_create();
  static PropList dataset_access();
  static PropList file_access();
  static PropList file_create();
  static PropList group_create();
  PropList copy() const;
  // netCDF-4 lists links and attributes in creation order and opens files without that order
  // read-only: files and groups track and index both, datasets their attributes.
  void track_link_creation_order();
  void track_attribute_creation_order();
  void set_chunk(const Dims& chunk);
  void set_shuffle();
  void set_deflate(unsigned level);
  void set_chunk_cache(std::size_t n_slots, std::size_t n_bytes);
  // Readers skip the lock so that a file still held by a running writer can be inspected.
  void disable_file_locking();

 private:
  using Handle::Handle;
};

// An owned datatype (copies; the predefined H5T_* ids are passed as plain hid_t instead).
class Datatype : public Handle {
 public:
  Datatype() = default;
  static Datatype utf8_string();  // variable-length, UTF-8
  H5T_class_t type_class() const;
  bool is_variable_string() const;
  std::size_t size() const;
  Datatype copy() const;

 private:
  using Handle::Handle;
  friend class Dataset;
  friend class Attribute;
};

class Attribute : public Handle {
 public:
  Attribute() = default;
  void write(hid_t mem_type, const void* data);
  void read(hid_t mem_type, void* data) const;
  Datatype type() const;
  Dataspace space() const;

 private:
  using Handle::Handle;
  friend class Object;
};

// Anything that carries attributes: files, groups, datasets.
class Object : public Handle {
 public:
  using Handle::Handle;
  bool has_attribute(const std::string& name) const;
  // Writes a scalar attribute, replacing the value when it already exists with the same type.
  void set_attribute(const std::string& name, const std::string& value);
  void set_attribute(const std::string& name, std::int64_t value);
  void set_attribute(const std::string& name, double value);
  void set_attribute(const std::string& name, int value) { set_attribute(name, std::int64_t{value}); }
  void set_attribute(const std::string& name, const char* value) { set_attribute(name, std::string(value)); }
  std::string string_attribute(const std::string& name) const;  // fixed- or variable-length
  std::int64_t int_attribute(const std::string& name) const;

 private:
  Attribute open_attribute(const std::string& name) const;
  Attribute create_attribute(const std::string& name, hid_t file_type);
};

class Dataset : public Object {
 public:
  Dataset() = default;
  Dataspace space() const;
  Datatype type() const;
  PropList create_plist() const;
  Dims dims() const { return space().dims(); }
  void set_extent(const Dims& dims);
  // Whole-dataset I/O.
  void write(hid_t mem_type, const void* data);
  void read(hid_t mem_type, void* data) const;
  // Block I/O: the block at `start` with `count` elements per axis, contiguous in memory.
  void write_block(hid_t mem_type, const Dims& start, const Dims& count, const void* data);
  void read_block(hid_t mem_type, const Dims& start, const Dims& count, void* data) const;
  // Grows axis 0 by one and writes `data` (one row: the product of the other dims) there.
  void append_row(hid_t mem_type, const void* data);

  // Conversions done by HDF5 on read: any integer or float dataset as doubles / int64.
  std::vector<double> read_doubles() const;
  std::vector<std::int64_t> read_int64s() const;
  std::vector<std::string> read_strings() const;     // 1-D string dataset (fixed or variable)
  void write_strings(const std::vector<std::string>& values);  // into a variable-length dataset

  // Dimension scales (hdf5_hl).
  void make_scale(const std::string& dim_name);
  bool is_scale() const;
  void attach_scale(const Dataset& scale, unsigned axis);
  void set_label(unsigned axis, const std::string& label);

 private:
  using Object::Object;
  friend class Location;
};

class Group;

// Files and groups: what can hold links.
class Location : public Object {
 public:
  using Object::Object;
  bool exists(const std::string& name) const;
  bool is_group(const std::string& name) const;
  bool is_dataset(const std::string& name) const;
  std::vector<std::string> child_names() const;  // in name order
  Group create_group(const std::string& name);
  Group open_group(const std::string& name) const;
  Dataset create_dataset(const std::string& name, hid_t file_type, const Dataspace& space,
                         const PropList& create = PropList(), const PropList& access = PropList());
  Dataset open_dataset(const std::string& name, const PropList& access = PropList()) const;

 protected:
  std::string child_path(const std::string& name) const;
  H5I_type_t child_type(const std::string& name) const;
};

class Group : public Location {
 public:
  Group() = default;

 private:
  using Location::Location;
  friend class Location;
};

class File : public Location {
 public:
  File() = default;
  // Creates a file readable by HDF5 1.8 and newer, with link and attribute creation order tracked
  // (as netCDF-4 wants); `truncate` replaces an existing one, otherwise an existing file is an error.
  static File create(const std::string& path, bool truncate);
  static File open_read_only(const std::string& path);
  // Opens an existing file to append to, with the same metadata caching as create().
  static File open_read_write(const std::string& path);
  void flush();
  // Flushes, then asks the operating system to put the file on disk (fsync).
  void sync();

 private:
  using Location::Location;
};

}  // namespace dalesim::h5
