// MpiComm: one rank per process under mpirun (built when USE_MPI=1). CPU tensors go through
// MPI_Allreduce / MPI_Bcast on their memory; CUDA tensors through NCCL on the default stream
// (ordered after the kernels that produced them, no host synchronisation) when USE_NCCL=1, else
// staged through host memory. The whole file is empty when PRM_USE_MPI is 0 (comm.cpp then
// has the stand-ins).
#if PRM_USE_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only (the C++ bindings are deprecated and need libmpi_cxx)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "dist/comm.h"
#include "tensor/allocator.h"

#if PRM_USE_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/check.h"
#endif
#if PRM_USE_NCCL
#include <nccl.h>
#endif

namespace prm {

namespace {

void mpi_check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw Error(str_cat("MPI: ", what, " failed: ", std::string(text, static_cast<size_t>(len))));
}

MPI_Datatype mpi_type(DType t) { return t == DType::f32 ? MPI_FLOAT : MPI_DOUBLE; }

#if PRM_USE_NCCL
void nccl_check(ncclResult_t r, const char* what) {
  PRM_CHECK(r == ncclSuccess, "NCCL: ", what, " failed: ", ncclGetErrorString(r));
}
ncclDataType_t nccl_type(DType t) { return t == DType::f32 ? ncclFloat32 : ncclFloat64; }
#endif

// MPI_Init once per process, MPI_Finalize at exit (after every rank agreed to stop: an error seen
// by one rank alone ends the job through MPI_Abort instead).
struct MpiSession {
  int provided = MPI_THREAD_SINGLE;
  MpiSession() {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised)
      mpi_check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided),
                "MPI_Init_thread");
    else
      MPI_Query_thread(&provided);
  }
  ~MpiSession() { mpi_finalize(); }  // a no-op after shutdown_world()
};

MpiSession& session() {
  static MpiSession s;
  return s;
}

class MpiComm : public Comm {
 public:
  MpiComm(MPI_Comm comm, Device device) : device_(device) {
    mpi_check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
#if PRM_USE_NCCL
    if (device_ == Device::cuda) {
      ncclUniqueId id;
      if (rank_ == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
      mpi_check(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, comm_), "MPI_Bcast of the NCCL id");
      nccl_check(ncclCommInitRank(&nccl_, size_, id, rank_), "ncclCommInitRank");
    }
#endif
  }
  ~MpiComm() override {
#if PRM_USE_NCCL
    if (nccl_) ncclCommDestroy(nccl_);
#endif
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override {
#if PRM_USE_NCCL
    if (nccl_) return "mpi+nccl";
#endif
    return "mpi";
  }

  void all_reduce_sum(Tensor& t) override {
    PRM_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64,
              "all_reduce_sum: float32 or float64 tensors only, got ", t.describe());
    if (t.numel() == 0) return;
    const int n = count(t);
    if (t.is_cuda()) {
#if PRM_USE_NCCL
      if (nccl_) {
        nccl_check(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(n),
                                 nccl_type(t.dtype()), ncclSum, nccl_, cudaStreamLegacy),
                   "ncclAllReduce");
        return;
      }
#endif
      Tensor host = t.to(Device::cpu);
      mpi_check(
          MPI_Allreduce(MPI_IN_PLACE, host.raw_data(), n, mpi_type(t.dtype()), MPI_SUM, comm_),
          "MPI_Allreduce");
      t.copy_(host);
      return;
    }
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, t.raw_data(), n, mpi_type(t.dtype()), MPI_SUM, comm_),
              "MPI_Allreduce");
  }

  void all_reduce(double* values, size_t n, ReduceOp op) override {
    const MPI_Op mop = op == ReduceOp::sum ? MPI_SUM : op == ReduceOp::max ? MPI_MAX : MPI_MIN;
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, values, static_cast<int>(n), MPI_DOUBLE, mop, comm_),
              "MPI_Allreduce");
  }

  void broadcast(Tensor& t, int root) override {
    const size_t bytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
    if (bytes == 0) return;
    if (t.is_cuda()) {
      Tensor host = t.to(Device::cpu);
      bcast_bytes(host.raw_data(), bytes, root);
      t.copy_(host);
      return;
    }
    bcast_bytes(t.raw_data(), bytes, root);
  }

  void broadcast(std::string& bytes, int root) override {
    unsigned long long n = bytes.size();
    mpi_check(MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, comm_), "MPI_Bcast");
    bytes.resize(static_cast<size_t>(n));
    bcast_bytes(bytes.data(), bytes.size(), root);
  }

  void barrier() override { mpi_check(MPI_Barrier(comm_), "MPI_Barrier"); }

  std::unique_ptr<Comm> duplicate() override {
    // The duplicate reduces CUDA tensors through host memory: two NCCL communicators driven
    // from two threads can deadlock on one stream, so NCCL stays with the first.
    return std::make_unique<MpiComm>(comm_, Device::cpu);
  }
  bool concurrent() const override {
    return session().provided >= MPI_THREAD_MULTIPLE && device_ == Device::cpu;
  }

 private:
  static int count(const Tensor& t) {
    PRM_CHECK(t.numel() <= 0x7fffffff, "all_reduce_sum: ", t.numel(),
              " elements is more than one MPI call takes; use smaller buckets");
    return static_cast<int>(t.numel());
  }
  void bcast_bytes(void* data, size_t bytes, int root) {
    char* p = static_cast<char*>(data);
    for (size_t off = 0; off < bytes; off += 1u << 30) {
      const size_t chunk = std::min<size_t>(1u << 30, bytes - off);
      mpi_check(MPI_Bcast(p + off, static_cast<int>(chunk), MPI_BYTE, root, comm_), "MPI_Bcast");
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  Device device_;
  int rank_ = 0, size_ = 1;
#if PRM_USE_NCCL
  ncclComm_t nccl_ = nullptr;
#endif
};

}  // namespace

std::unique_ptr<Comm> make_mpi_comm(Device device) {
  session();
#if PRM_USE_CUDA
  if (device == Device::cuda && cuda_available()) {
    // This node's ranks, from MPI itself (any launcher): a communicator of the ranks that share
    // memory with this one.
    MPI_Comm node = MPI_COMM_NULL;
    mpi_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
              "MPI_Comm_split_type");
    int local_rank = 0, local_ranks = 1;
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &local_ranks);
    MPI_Comm_free(&node);
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) count = 0;
    std::string problem;
    int gpu = 0;
    try {
      gpu = pick_local_gpu(local_rank, local_ranks, count);
    } catch (const std::exception& e) {
      problem = e.what();
    }
    // Every rank stops when one node is short of GPUs: the others would wait in NCCL's set-up.
    int failed = problem.empty() ? 0 : 1;
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD),
              "MPI_Allreduce");
    if (failed)
      throw Error(problem.empty() ? std::string("another node has more ranks than CUDA devices "
                                                "(its ranks print how many)")
                                  : problem);
    CUDA_CHECK(cudaSetDevice(gpu));
  }
#endif
  return std::make_unique<MpiComm>(MPI_COMM_WORLD, device);
}

bool mpi_finalize() {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (!initialised || finalised) return false;
  MPI_Finalize();
  return true;
}

void mpi_abort(int code) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (initialised) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace prm

#endif  // PRM_USE_MPI
