#include "tensor/tensor.h"

#include <sstream>

#include "kernels/basic.h"
#include "tensor/allocator.h"
#include "tensor/autograd.h"

namespace prm {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Storage::Storage(size_t nbytes, Device dev) : bytes(nbytes), device(dev) {
  ptr = device_alloc(dev, nbytes);
}
Storage::~Storage() { device_free(device, ptr, bytes); }

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    PRM_CHECK(d >= 0, "Tensor::empty: negative size in shape ", prm::shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype,
                           Device device) {
  PRM_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector: ",
            values.size(), " values for shape ", prm::shape_str(shape));
  Tensor host = empty(shape, DType::f64, Device::cpu);
  std::copy(values.begin(), values.end(), host.data<double>());
  return host.to(dtype).to(device).detach();
}

Tensor Tensor::from_data(const void* data, const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  device_copy(t.raw_data(), device, data, Device::cpu, t.numel() * dtype_size(dtype));
  return t;
}

Tensor Tensor::randn(const Shape& shape, std::mt19937_64& rng, DType dtype, Device device) {
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<double> v(shape_numel(shape));
  for (double& x : v) x = dist(rng);
  return from_vector(v, shape, dtype, device);
}

Tensor Tensor::uniform(const Shape& shape, double lo, double hi, std::mt19937_64& rng,
                       DType dtype, Device device) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(shape_numel(shape));
  for (double& x : v) x = dist(rng);
  return from_vector(v, shape, dtype, device);
}

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  PRM_CHECK(d >= -n && d < n, "Tensor::size: dim ", d, " out of range for shape ", shape_str());
  return shape()[d < 0 ? d + n : d];
}

std::string Tensor::describe() const {
  return str_cat(shape_str(), " ", dtype_name(dtype()), " ", device_name(device()));
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape();
  impl->dtype = dtype();
  impl->storage = this->impl().storage;
  return Tensor(std::move(impl));
}

namespace {

// Plain device/dtype copy with no autograd.
Tensor copy_as(const Tensor& src, DType dtype, Device device) {
  Tensor out = Tensor::empty(src.shape(), dtype, device);
  if (dtype == src.dtype()) {
    device_copy(out.raw_data(), device, src.raw_data(), src.device(),
                src.numel() * dtype_size(dtype));
    return out;
  }
  // Convert on the source device, then move.
  Tensor converted = device == src.device() ? out : Tensor::empty(src.shape(), dtype, src.device());
  void* o = converted.raw_data();
  const int64_t n = src.numel();
  switch (src.dtype()) {
    case DType::f32: launch<Convert, float>(src.device(), o, dtype, src.data<float>(), n); break;
    case DType::f64: launch<Convert, double>(src.device(), o, dtype, src.data<double>(), n); break;
    case DType::i64: launch<Convert, int64_t>(src.device(), o, dtype, src.data<int64_t>(), n); break;
  }
  if (device != src.device()) return copy_as(converted, dtype, device);
  return converted;
}

}  // namespace

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor out = copy_as(*this, dtype(), device);
  const Device from = this->device();
  attach_grad_fn(out, "to_device", "to_device (g.to(from))", {*this},
                 [from](const Tensor& g) { return std::vector<Tensor>{g.to(from)}; });
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  Tensor out = copy_as(*this, dtype, device());
  const DType from = this->dtype();
  attach_grad_fn(out, "to_dtype", "to_dtype (g.to(from))", {*this},
                 [from](const Tensor& g) { return std::vector<Tensor>{g.to(from)}; });
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = copy_as(*this, dtype(), device());
  attach_grad_fn(out, "clone", "clone (identity)", {*this},
                 [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

std::vector<double> Tensor::to_vector() const {
  Tensor host = copy_as(*this, DType::f64, Device::cpu);
  const double* p = host.data<double>();
  return std::vector<double>(p, p + numel());
}

double Tensor::item() const {
  PRM_CHECK(numel() == 1, "Tensor::item: tensor of shape ", shape_str(), " has ", numel(),
            " elements, expected 1");
  return to_vector()[0];
}

void Tensor::copy_(const Tensor& src) {
  PRM_CHECK(src.shape() == shape(), "Tensor::copy_: source ", src.shape_str(), " vs destination ",
            shape_str());
  Tensor converted = src.dtype() == dtype() ? src : copy_as(src, dtype(), src.device());
  device_copy(raw_data(), device(), converted.raw_data(), converted.device(),
              numel() * dtype_size(dtype()));
}

void Tensor::fill_(double value) {
  const int64_t n = numel();
  switch (dtype()) {
    case DType::f32: launch<Fill, float>(device(), data<float>(), float(value), n); break;
    case DType::f64: launch<Fill, double>(device(), data<double>(), value, n); break;
    case DType::i64: launch<Fill, int64_t>(device(), data<int64_t>(), int64_t(value), n); break;
  }
}

Tensor& Tensor::set_requires_grad(bool on) {
  PRM_CHECK(!on || dtype() != DType::i64, "requires_grad: an int64 tensor cannot require grad");
  PRM_CHECK(is_leaf(), "requires_grad can only be set on a leaf tensor");
  impl().requires_grad = on;
  return *this;
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  run_backward(*this, grad, retain_graph);
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  PRM_CHECK(a.device() == b.device(), op, ": tensors on different devices: ", a.describe(),
            " and ", b.describe());
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  PRM_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: ", a.describe(), " and ",
            b.describe());
}

void check_float(const char* op, const Tensor& a) {
  PRM_CHECK(a.dtype() != DType::i64, op, ": expected a float32 or float64 tensor, got ",
            a.describe());
}

void check_dim(const char* op, const Tensor& a, int64_t ndim, const char* what) {
  PRM_CHECK(a.dim() == ndim, op, ": expected ", what, " with ", ndim, " dims, got shape ",
            a.shape_str());
}

}  // namespace prm
