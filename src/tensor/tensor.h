// Tensor: a contiguous, row-major block of float32/float64/int64 on the CPU or a CUDA device,
// with the autograd fields (requires_grad, grad, grad_fn). A Tensor is a shared handle: copies
// share the same TensorImpl; reshape() makes a new TensorImpl over the same Storage (a view).
#pragma once
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/error.h"

namespace prm {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

struct Storage {
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device = Device::cpu;
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct Node;
class Tensor;

struct TensorImpl {
  Shape shape;
  DType dtype = DType::f32;
  std::shared_ptr<Storage> storage;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated for leaves only
  std::shared_ptr<Node> grad_fn;     // null for leaves and for tensors made without grad
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories. Random ones draw on the CPU from the given generator, then move to `device`,
  // so the same seed gives the same numbers on every device.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu);
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape,
                            DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor from_data(const void* data, const Shape& shape, DType dtype,
                          Device device = Device::cpu);  // copies from host memory
  static Tensor randn(const Shape& shape, std::mt19937_64& rng, DType dtype = DType::f32,
                      Device device = Device::cpu);
  static Tensor uniform(const Shape& shape, double lo, double hi, std::mt19937_64& rng,
                        DType dtype = DType::f32, Device device = Device::cpu);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape()); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device; }
  bool is_cuda() const { return device() == Device::cuda; }
  std::string shape_str() const { return prm::shape_str(shape()); }
  std::string describe() const;  // "[2, 3] float32 cpu"

  void* raw_data() const { return impl().storage->ptr; }
  template <typename T>
  T* data() const {
    PRM_CHECK(dtype_of<T>::value == dtype(), "Tensor::data: tensor is ", dtype_name(dtype()),
              ", asked for ", dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw_data());
  }

  // Differentiable conversions (gradients flow back to the source device / dtype).
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor clone() const;   // differentiable copy
  Tensor detach() const;  // shares storage, no grad_fn, requires_grad false

  std::vector<double> to_vector() const;  // host copy, converted to double
  double item() const;                    // the single element of a 1-element tensor

  // In-place, outside autograd (optimizers, initialisers, gradient bookkeeping).
  void copy_(const Tensor& src);  // same shape and dtype, any devices
  void fill_(double value);

  // Autograd.
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool on);
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  void zero_grad() { impl().grad.reset(); }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  // Back-propagates `grad` (default: 1 for a one-element tensor) into every leaf's grad.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  TensorImpl& impl() const {
    PRM_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Checks used by ops: they throw prm::Error naming the op and the shapes.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_float(const char* op, const Tensor& a);
void check_dim(const char* op, const Tensor& a, int64_t ndim, const char* what);

}  // namespace prm
