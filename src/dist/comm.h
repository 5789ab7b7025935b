// Process groups for data-parallel training (docs/scaling.md): the collectives the trainer needs,
// behind one interface with three implementations.
//
//   SingleComm   one rank; every collective is the identity. A plain `prm train` uses it and
//                needs no MPI at run time.
//   MpiComm      one rank per process under `mpirun` (comm_mpi.cpp, built when USE_MPI=1).
//                CPU tensors go through MPI_Allreduce; CUDA tensors through NCCL when it is built
//                in (USE_NCCL=1, the communicator bootstrapped through MPI), else staged through
//                host memory.
//   ThreadGroup  R ranks as R threads of one process, sums in rank order: what the unit tests use
//                to check sharding, synchronised batch norm and the gradient reducer without
//                mpirun.
//
// Every rank must call the same collectives in the same order (as with MPI). A communicator is
// used by one thread at a time; duplicate() gives a second one over the same ranks whose
// collectives never match this one's, for a background thread (concurrent() says whether that is
// allowed: MPI needs MPI_THREAD_MULTIPLE, NCCL calls stay on the caller's thread).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "tensor/tensor.h"

namespace prm {

// An error every rank raised together after a collective check (bad input, a NaN loss, ranks that
// disagree): the ranks can shut down in step. Any other error on one rank aborts the job.
struct CollectiveError : Error {
  using Error::Error;
};

enum class ReduceOp { sum, max, min };

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "single", "threads", "mpi", "mpi+nccl"

  // Sums a float32/float64 tensor over the ranks, in place, on its device. Every rank ends with
  // the same bits.
  virtual void all_reduce_sum(Tensor& t) = 0;
  // Host doubles, in place.
  virtual void all_reduce(double* values, size_t n, ReduceOp op) = 0;
  // Root's tensor (same shape and dtype on every rank) or bytes to every rank.
  virtual void broadcast(Tensor& t, int root) = 0;
  virtual void broadcast(std::string& bytes, int root) = 0;
  virtual void barrier() = 0;

  virtual std::unique_ptr<Comm> duplicate() = 0;
  virtual bool concurrent() const = 0;
};

class SingleComm : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void all_reduce_sum(Tensor&) override {}
  void all_reduce(double*, size_t, ReduceOp) override {}
  void broadcast(Tensor&, int) override {}
  void broadcast(std::string&, int) override {}
  void barrier() override {}
  std::unique_ptr<Comm> duplicate() override { return std::make_unique<SingleComm>(); }
  bool concurrent() const override { return true; }
};

// R ranks in one process: ThreadGroup group(R); thread r uses group.comm(r).
class ThreadGroup {
 public:
  explicit ThreadGroup(int ranks);
  ~ThreadGroup();
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;
  Comm& comm(int rank);
  int size() const;

  struct Shared;  // the rendezvous (comm.cpp)

 private:
  std::shared_ptr<Shared> shared_;
  std::vector<std::unique_ptr<Comm>> comms_;
};

// The ranks this process was started with, read from the launcher's environment (OpenMPI, MPICH,
// Slurm's PMI): 1 when not started by a launcher.
int launched_ranks();
int launched_rank();        // this process's rank (0 when not started by a launcher)

// The GPU of local rank `local_rank` of `local_ranks` ranks on a node with `gpus` devices: one GPU
// per rank, so more ranks than GPUs on a node is an error (NCCL refuses two ranks on one GPU, and
// they would share its memory besides) that names the counts and what to do.
int pick_local_gpu(int local_rank, int local_ranks, int gpus);

// The process group of this process: MPI when started by a launcher with more than one rank (an
// error naming USE_MPI when this build has no MPI), else SingleComm. Initialises MPI once (and
// NCCL for `device` cuda); finalised at exit. The same object on every call.
Comm& world(Device device = Device::cpu);
bool world_initialised();
// Ends the process group before main returns: destroys the NCCL communicator and the MPI
// communicator, then finalises MPI (in that order: NCCL and MPI must not be torn down by static
// destructors after MPI_Finalize or after the CUDA runtime has unloaded). A no-op when none was
// started. world() after this gives a new single-process group; under a launcher it is an error
// (MPI cannot be initialised twice in one process).
void shutdown_world();
// Ends the job after an error that only this rank saw: prints nothing (the caller has), makes
// every other rank stop (MPI_Abort) and exits with `code`. Returns when there is one rank.
void abort_other_ranks(int code);

// Runs `body` on every rank and makes the ranks agree on how it went: when it threw on any rank,
// every rank throws CollectiveError (the failing ranks with their own message, the others naming
// the ranks that failed), so all of them stop together instead of some waiting forever in the
// next collective. With one rank it just runs `body`.
void agree(Comm& comm, const std::function<void()>& body);

// MPI's implementation (comm_mpi.cpp), nullptr in a build without MPI.
std::unique_ptr<Comm> make_mpi_comm(Device device);
void mpi_abort(int code);
bool mpi_finalize();  // MPI_Finalize when MPI was initialised and not finalised: true if it ran

}  // namespace prm
