// The RAII HDF5 wrapper (h5.hpp): error folding, handles, files, groups, attributes, datasets.
#include "io/h5.hpp"

#include <hdf5_hl.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

// Calls an HDF5 function and throws (with file, line, object and the HDF5 stack) on a negative result.
#define H5_CHECKED(fn, object, ...) check_result(fn(__VA_ARGS__), #fn, object, __FILE__, __LINE__)

namespace dalesim::h5 {

namespace {

template <typename T>
T check_result(T result, const char* call, const std::string& object, const char* file, int line) {
  if (result < 0) throw_error(call, object, file, line);
  return result;
}

herr_t walk_one(unsigned n, const H5E_error2_t* e, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n > 0) *out += "; ";
  std::string desc = e->desc ? e->desc : "";
  for (char& ch : desc)
    if (ch == '\n') ch = ' ';  // some HDF5 messages embed newlines
  *out += std::string(e->func_name ? e->func_name : "?") + "(): " + desc;
  char minor[128] = {0};
  if (H5Eget_msg(e->min_num, nullptr, minor, sizeof minor) > 0) *out += std::string(" [") + minor + "]";
  return 0;
}

const char* base_name(const char* file) {
  const char* slash = std::strrchr(file, '/');
  return slash ? slash + 1 : file;
}

}  // namespace

void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string error_stack_text() {
  // Copy (and clear) the stack first: the H5Eget_msg calls below must not disturb what we walk.
  hid_t stack = H5Eget_current_stack();
  if (stack < 0) return "(no HDF5 error stack)";
  std::string text;
  H5Ewalk2(stack, H5E_WALK_DOWNWARD, walk_one, &text);
  H5Eclose_stack(stack);
  return text.empty() ? "(empty HDF5 error stack)" : text;
}

void throw_error(const char* call, const std::string& object, const char* file, int line) {
  std::string stack = error_stack_text();
  throw std::runtime_error(std::string(call) + " failed on " + object + " (" + base_name(file) + ":" +
                           std::to_string(line) + "): " + stack);
}

// ---- Handle ---------------------------------------------------------------------------------------

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    file_ = std::move(o.file_);
    path_ = std::move(o.path_);
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::close() {
  if (id_ < 0) return;
  hid_t id = id_;
  id_ = H5I_INVALID_HID;
  if (closer_ && closer_(id) < 0) throw_error("close", where(), __FILE__, __LINE__);
}

void Handle::reset() noexcept {
  if (id_ >= 0 && closer_) {
    if (closer_(id_) < 0) H5Eclear2(H5E_DEFAULT);
  }
  id_ = H5I_INVALID_HID;
}

// ---- Dataspace ------------------------------------------------------------------------------------

Dataspace Dataspace::scalar() {
  return Dataspace(H5_CHECKED(H5Screate, "scalar dataspace", H5S_SCALAR), H5Sclose, "", "");
}

Dataspace Dataspace::simple(const Dims& dims) { return simple(dims, dims); }

Dataspace Dataspace::simple(const Dims& dims, const Dims& max_dims) {
  hid_t id = H5_CHECKED(H5Screate_simple, "simple dataspace", static_cast<int>(dims.size()), dims.data(),
                        max_dims.data());
  return Dataspace(id, H5Sclose, "", "");
}

Dims Dataspace::dims() const {
  int rank = H5_CHECKED(H5Sget_simple_extent_ndims, where(), id_);
  Dims d(static_cast<std::size_t>(rank));
  if (rank > 0) H5_CHECKED(H5Sget_simple_extent_dims, where(), id_, d.data(), nullptr);
  return d;
}

void Dataspace::select(const Dims& start, const Dims& count) {
  H5_CHECKED(H5Sselect_hyperslab, where(), id_, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
}

// ---- PropList -------------------------------------------------------------------------------------

PropList PropList::dataset_create() {
  return PropList(H5_CHECKED(H5Pcreate, "dataset creation plist", H5P_DATASET_CREATE), H5Pclose, "", "");
}
PropList PropList::dataset_access() {
  return PropList(H5_CHECKED(H5Pcreate, "dataset access plist", H5P_DATASET_ACCESS), H5Pclose, "", "");
}
PropList PropList::file_access() {
  return PropList(H5_CHECKED(H5Pcreate, "file access plist", H5P_FILE_ACCESS), H5Pclose, "", "");
}
PropList PropList::file_create() {
  return PropList(H5_CHECKED(H5Pcreate, "file creation plist", H5P_FILE_CREATE), H5Pclose, "", "");
}
PropList PropList::group_create() {
  return PropList(H5_CHECKED(H5Pcreate, "group creation plist", H5P_GROUP_CREATE), H5Pclose, "", "");
}
PropList PropList::copy() const { return PropList(H5_CHECKED(H5Pcopy, "plist copy", id_), H5Pclose, "", ""); }
void PropList::track_link_creation_order() {
  H5_CHECKED(H5Pset_link_creation_order, "creation plist", id_, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
}
void PropList::track_attribute_creation_order() {
  H5_CHECKED(H5Pset_attr_creation_order, "creation plist", id_, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
}
void PropList::set_chunk(const Dims& chunk) {
  H5_CHECKED(H5Pset_chunk, "dataset creation plist", id_, static_cast<int>(chunk.size()), chunk.data());
}
void PropList::set_shuffle() { H5_CHECKED(H5Pset_shuffle, "dataset creation plist", id_); }
void PropList::set_deflate(unsigned level) { H5_CHECKED(H5Pset_deflate, "dataset creation plist", id_, level); }
void PropList::set_chunk_cache(std::size_t n_slots, std::size_t n_bytes) {
  H5_CHECKED(H5Pset_chunk_cache, "dataset access plist", id_, n_slots, n_bytes, 0.75);
}
void PropList::disable_file_locking() {
#if H5_VERSION_GE(1, 12, 1) || (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7)
  H5_CHECKED(H5Pset_file_locking, "file access plist", id_, false, true);
#endif
}

// ---- Datatype -------------------------------------------------------------------------------------

Datatype Datatype::utf8_string() {
  Datatype t(H5_CHECKED(H5Tcopy, "string type", H5T_C_S1), H5Tclose, "", "");
  H5_CHECKED(H5Tset_size, "string type", t.id_, H5T_VARIABLE);
  H5_CHECKED(H5Tset_cset, "string type", t.id_, H5T_CSET_UTF8);
  return t;
}
H5T_class_t Datatype::type_class() const {
  H5T_class_t c = H5Tget_class(id_);
  if (c == H5T_NO_CLASS) throw_error("H5Tget_class", where(), __FILE__, __LINE__);
  return c;
}
bool Datatype::is_variable_string() const { return H5_CHECKED(H5Tis_variable_str, where(), id_) > 0; }
std::size_t Datatype::size() const {
  std::size_t n = H5Tget_size(id_);
  if (n == 0) throw_error("H5Tget_size", where(), __FILE__, __LINE__);
  return n;
}
Datatype Datatype::copy() const { return Datatype(H5_CHECKED(H5Tcopy, where(), id_), H5Tclose, file_, path_); }

// ---- Attribute / Object ---------------------------------------------------------------------------

void Attribute::write(hid_t mem_type, const void* data) { H5_CHECKED(H5Awrite, where(), id_, mem_type, data); }
void Attribute::read(hid_t mem_type, void* data) const { H5_CHECKED(H5Aread, where(), id_, mem_type, data); }
Datatype Attribute::type() const { return Datatype(H5_CHECKED(H5Aget_type, where(), id_), H5Tclose, file_, path_); }
Dataspace Attribute::space() const {
  return Dataspace(H5_CHECKED(H5Aget_space, where(), id_), H5Sclose, file_, path_);
}

bool Object::has_attribute(const std::string& name) const {
  return H5_CHECKED(H5Aexists, where(), id_, name.c_str()) > 0;
}

Attribute Object::open_attribute(const std::string& name) const {
  std::string at = path_ + "@" + name;
  hid_t id = H5_CHECKED(H5Aopen, file_ + ":" + at, id_, name.c_str(), H5P_DEFAULT);
  return Attribute(id, H5Aclose, file_, at);
}

Attribute Object::create_attribute(const std::string& name, hid_t file_type) {
  std::string at = path_ + "@" + name;
  Dataspace scalar = Dataspace::scalar();
  hid_t id = H5_CHECKED(H5Acreate2, file_ + ":" + at, id_, name.c_str(), file_type, scalar.id(), H5P_DEFAULT,
                        H5P_DEFAULT);
  return Attribute(id, H5Aclose, file_, at);
}

void Object::set_attribute(const std::string& name, const std::string& value) {
  Datatype t = Datatype::utf8_string();
  // A variable-length string attribute can be rewritten in place (status "running" -> "complete").
  Attribute a = has_attribute(name) ? open_attribute(name) : create_attribute(name, t.id());
  const char* p = value.c_str();
  a.write(t.id(), &p);
}

void Object::set_attribute(const std::string& name, std::int64_t value) {
  Attribute a = has_attribute(name) ? open_attribute(name) : create_attribute(name, H5T_STD_I64LE);
  a.write(H5T_NATIVE_INT64, &value);
}

void Object::set_attribute(const std::string& name, double value) {
  Attribute a = has_attribute(name) ? open_attribute(name) : create_attribute(name, H5T_IEEE_F64LE);
  a.write(H5T_NATIVE_DOUBLE, &value);
}

std::string Object::string_attribute(const std::string& name) const {
  Attribute a = open_attribute(name);
  Datatype t = a.type();
  if (t.type_class() != H5T_STRING) throw std::runtime_error(a.where() + ": attribute is not a string");
  if (!a.space().dims().empty())
    throw std::runtime_error(a.where() + ": attribute is not a scalar");
  if (t.is_variable_string()) {
    char* p = nullptr;
    a.read(t.id(), &p);
    std::string s = p ? p : "";
    if (p) H5free_memory(p);
    return s;
  }
  std::vector<char> buf(t.size() + 1, '\0');
  a.read(t.id(), buf.data());
  return std::string(buf.data());  // fixed-length strings are NUL- or space-padded
}

std::int64_t Object::int_attribute(const std::string& name) const {
  Attribute a = open_attribute(name);
  H5T_class_t c = a.type().type_class();
  if (c != H5T_INTEGER && c != H5T_FLOAT) throw std::runtime_error(a.where() + ": attribute is not a number");
  // H5Aread writes every element: only a single one fits in `v`.
  const hssize_t n = H5_CHECKED(H5Sget_simple_extent_npoints, a.where(), a.space().id());
  if (n != 1)
    throw std::runtime_error(a.where() + ": attribute is not a single number (it holds " + std::to_string(n) +
                             " values)");
  std::int64_t v = 0;
  a.read(H5T_NATIVE_INT64, &v);
  return v;
}

// ---- Dataset --------------------------------------------------------------------------------------

Dataspace Dataset::space() const { return Dataspace(H5_CHECKED(H5Dget_space, where(), id_), H5Sclose, file_, path_); }
Datatype Dataset::type() const { return Datatype(H5_CHECKED(H5Dget_type, where(), id_), H5Tclose, file_, path_); }
PropList Dataset::create_plist() const {
  return PropList(H5_CHECKED(H5Dget_create_plist, where(), id_), H5Pclose, file_, path_);
}
void Dataset::set_extent(const Dims& dims) { H5_CHECKED(H5Dset_extent, where(), id_, dims.data()); }

void Dataset::write(hid_t mem_type, const void* data) {
  H5_CHECKED(H5Dwrite, where(), id_, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
}
void Dataset::read(hid_t mem_type, void* data) const {
  H5_CHECKED(H5Dread, where(), id_, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
}

void Dataset::write_block(hid_t mem_type, const Dims& start, const Dims& count, const void* data) {
  Dataspace file_space = space();
  file_space.select(start, count);
  Dataspace mem_space = Dataspace::simple(count);
  H5_CHECKED(H5Dwrite, where(), id_, mem_type, mem_space.id(), file_space.id(), H5P_DEFAULT, data);
}

void Dataset::read_block(hid_t mem_type, const Dims& start, const Dims& count, void* data) const {
  Dataspace file_space = space();
  file_space.select(start, count);
  Dataspace mem_space = Dataspace::simple(count);
  H5_CHECKED(H5Dread, where(), id_, mem_type, mem_space.id(), file_space.id(), H5P_DEFAULT, data);
}

void Dataset::append_row(hid_t mem_type, const void* data) {
  Dims d = dims();
  Dims start(d.size(), 0), count = d;
  start[0] = d[0];
  count[0] = 1;
  d[0] += 1;
  set_extent(d);
  write_block(mem_type, start, count, data);
}

namespace {
std::size_t n_elements(const Dims& d) {
  std::size_t n = 1;
  for (hsize_t x : d) n *= static_cast<std::size_t>(x);
  return n;
}
}  // namespace

std::vector<double> Dataset::read_doubles() const {
  std::vector<double> v(n_elements(dims()));
  if (!v.empty()) read(H5T_NATIVE_DOUBLE, v.data());
  return v;
}

std::vector<std::int64_t> Dataset::read_int64s() const {
  std::vector<std::int64_t> v(n_elements(dims()));
  if (!v.empty()) read(H5T_NATIVE_INT64, v.data());
  return v;
}

std::vector<std::string> Dataset::read_strings() const {
  Datatype t = type();
  if (t.type_class() != H5T_STRING) throw std::runtime_error(where() + ": dataset is not a string dataset");
  std::size_t n = n_elements(dims());
  std::vector<std::string> out;
  out.reserve(n);
  if (n == 0) return out;
  if (t.is_variable_string()) {
    std::vector<char*> ptrs(n, nullptr);
    read(t.id(), ptrs.data());
    for (char* p : ptrs) {
      out.emplace_back(p ? p : "");
      if (p) H5free_memory(p);
    }
    return out;
  }
  std::size_t width = t.size();
  std::vector<char> buf(n * width);
  read(t.id(), buf.data());
  for (std::size_t i = 0; i < n; ++i) out.emplace_back(buf.data() + i * width, strnlen(buf.data() + i * width, width));
  return out;
}

void Dataset::write_strings(const std::vector<std::string>& values) {
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& s : values) ptrs.push_back(s.c_str());
  Datatype t = Datatype::utf8_string();
  if (!ptrs.empty()) write(t.id(), ptrs.data());
}

void Dataset::make_scale(const std::string& dim_name) { H5_CHECKED(H5DSset_scale, where(), id_, dim_name.c_str()); }
bool Dataset::is_scale() const { return H5_CHECKED(H5DSis_scale, where(), id_) > 0; }
void Dataset::attach_scale(const Dataset& scale, unsigned axis) {
  H5_CHECKED(H5DSattach_scale, where(), id_, scale.id(), axis);
}
void Dataset::set_label(unsigned axis, const std::string& label) {
  H5_CHECKED(H5DSset_label, where(), id_, axis, label.c_str());
}

// ---- Location / Group / File ----------------------------------------------------------------------

std::string Location::child_path(const std::string& name) const {
  return path_ == "/" ? "/" + name : path_ + "/" + name;
}

bool Location::exists(const std::string& name) const {
  return H5_CHECKED(H5Lexists, where(), id_, name.c_str(), H5P_DEFAULT) > 0;
}

H5I_type_t Location::child_type(const std::string& name) const {
  if (!exists(name)) return H5I_BADID;
  hid_t obj = H5_CHECKED(H5Oopen, file_ + ":" + child_path(name), id_, name.c_str(), H5P_DEFAULT);
  Handle owner(obj, H5Oclose, file_, child_path(name));
  return H5Iget_type(obj);
}

bool Location::is_group(const std::string& name) const { return child_type(name) == H5I_GROUP; }
bool Location::is_dataset(const std::string& name) const { return child_type(name) == H5I_DATASET; }

std::vector<std::string> Location::child_names() const {
  H5G_info_t info;
  H5_CHECKED(H5Gget_info, where(), id_, &info);
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n = H5_CHECKED(H5Lget_name_by_idx, where(), id_, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                           H5P_DEFAULT);
    std::vector<char> buf(static_cast<std::size_t>(n) + 1, '\0');
    H5_CHECKED(H5Lget_name_by_idx, where(), id_, ".", H5_INDEX_NAME, H5_ITER_INC, i, buf.data(), buf.size(),
               H5P_DEFAULT);
    names.emplace_back(buf.data());
  }
  return names;
}

Group Location::create_group(const std::string& name) {
  std::string p = child_path(name);
  PropList gcpl = PropList::group_create();
  gcpl.track_link_creation_order();
  gcpl.track_attribute_creation_order();
  hid_t id = H5_CHECKED(H5Gcreate2, file_ + ":" + p, id_, name.c_str(), H5P_DEFAULT, gcpl.id(), H5P_DEFAULT);
  return Group(id, H5Gclose, file_, p);
}

Group Location::open_group(const std::string& name) const {
  std::string p = child_path(name);
  hid_t id = H5_CHECKED(H5Gopen2, file_ + ":" + p, id_, name.c_str(), H5P_DEFAULT);
  return Group(id, H5Gclose, file_, p);
}

Dataset Location::create_dataset(const std::string& name, hid_t file_type, const Dataspace& space,
                                 const PropList& create, const PropList& access) {
  std::string p = child_path(name);
  PropList dcpl = create.valid() ? create.copy() : PropList::dataset_create();
  dcpl.track_attribute_creation_order();
  hid_t dapl = access.valid() ? access.id() : H5P_DEFAULT;
  hid_t id = H5_CHECKED(H5Dcreate2, file_ + ":" + p, id_, name.c_str(), file_type, space.id(), H5P_DEFAULT,
                        dcpl.id(), dapl);
  return Dataset(id, H5Dclose, file_, p);
}

Dataset Location::open_dataset(const std::string& name, const PropList& access) const {
  std::string p = child_path(name);
  hid_t id = H5_CHECKED(H5Dopen2, file_ + ":" + p, id_, name.c_str(), access.valid() ? access.id() : H5P_DEFAULT);
  return Dataset(id, H5Dclose, file_, p);
}

namespace {
// Dirty metadata stays in memory until the next flush instead of being evicted to disk in between:
// a run killed between flushes then leaves the file as it was at the last flush (with evictions,
// object headers and chunk indexes half a checkpoint ahead made data unreadable).
PropList writer_file_access() {
  PropList fapl = PropList::file_access();
  H5AC_cache_config_t mdc;
  mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
  H5_CHECKED(H5Pget_mdc_config, "file access plist", fapl.id(), &mdc);
  mdc.evictions_enabled = false;  // requires the automatic resizing below to be off
  mdc.incr_mode = H5C_incr__off;
  mdc.flash_incr_mode = H5C_flash_incr__off;
  mdc.decr_mode = H5C_decr__off;
  H5_CHECKED(H5Pset_mdc_config, "file access plist", fapl.id(), &mdc);
  return fapl;
}
}  // namespace

File File::create(const std::string& path, bool truncate) {
  silence_errors();
  unsigned flags = truncate ? H5F_ACC_TRUNC : H5F_ACC_EXCL;
  PropList fcpl = PropList::file_create();
  fcpl.track_link_creation_order();
  fcpl.track_attribute_creation_order();
  PropList fapl = writer_file_access();
  hid_t id = H5_CHECKED(H5Fcreate, path + ":/", path.c_str(), flags, fcpl.id(), fapl.id());
  return File(id, H5Fclose, path, "/");
}

File File::open_read_write(const std::string& path) {
  silence_errors();
  PropList fapl = writer_file_access();
  hid_t id = H5_CHECKED(H5Fopen, path + ":/", path.c_str(), H5F_ACC_RDWR, fapl.id());
  return File(id, H5Fclose, path, "/");
}

File File::open_read_only(const std::string& path) {
  silence_errors();
  PropList fapl = PropList::file_access();
  fapl.disable_file_locking();
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.id());
  if (id < 0) {
    std::string first = error_stack_text();
    // A file this process already holds open (a running writer) must be reopened with the same
    // locking flags; the unlocked open above is for files held by another process.
    id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (id < 0) {
      H5Eclear2(H5E_DEFAULT);
      throw std::runtime_error("H5Fopen failed on " + path + ":/ (" + base_name(__FILE__) + ":" +
                               std::to_string(__LINE__) + "): " + first);
    }
  }
  return File(id, H5Fclose, path, "/");
}

void File::flush() { H5_CHECKED(H5Fflush, where(), id_, H5F_SCOPE_GLOBAL); }

void File::sync() {
  flush();
  void* handle = nullptr;
  H5_CHECKED(H5Fget_vfd_handle, where(), id_, H5P_DEFAULT, &handle);
  // The default (sec2) driver's handle is a pointer to its POSIX file descriptor.
  if (handle && ::fsync(*static_cast<int*>(handle)) != 0)
    throw std::runtime_error("fsync failed on " + file_ + ": " + std::strerror(errno));
}

}  // namespace dalesim::h5
