#include "dist/comm.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace prm {

// ---- ThreadGroup: ranks as threads -----------------------------------------------------------

struct ThreadGroup::Shared {
  explicit Shared(int n) : size(n), slots(n) {}
  int size;
  std::mutex mutex;
  std::condition_variable cv;
  int arrived = 0;
  uint64_t generation = 0;
  std::vector<std::vector<double>> slots;  // one per rank
  std::string bytes;
  std::vector<std::shared_ptr<Shared>> duplicates;  // the k-th duplicate() of every rank

  void wait(std::unique_lock<std::mutex>& lock) {
    const uint64_t gen = generation;
    if (++arrived == size) {
      arrived = 0;
      ++generation;
      cv.notify_all();
    } else {
      cv.wait(lock, [&] { return generation != gen; });
    }
  }
};

namespace {

class ThreadComm : public Comm {
 public:
  ThreadComm(std::shared_ptr<ThreadGroup::Shared> shared, int rank)
      : shared_(std::move(shared)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return shared_->size; }
  std::string backend() const override { return "threads"; }

  void all_reduce_sum(Tensor& t) override {
    std::vector<double> v = t.to_vector();
    reduce(v, ReduceOp::sum);
    t.copy_(Tensor::from_vector(v, t.shape(), t.dtype(), t.device()));
  }
  void all_reduce(double* values, size_t n, ReduceOp op) override {
    std::vector<double> v(values, values + n);
    reduce(v, op);
    std::copy(v.begin(), v.end(), values);
  }
  void broadcast(Tensor& t, int root) override {
    std::vector<double> v = t.to_vector();
    std::unique_lock<std::mutex> lock(shared_->mutex);
    if (rank_ == root) shared_->slots[0] = v;
    shared_->wait(lock);
    v = shared_->slots[0];
    shared_->wait(lock);
    lock.unlock();
    t.copy_(Tensor::from_vector(v, t.shape(), t.dtype(), t.device()));
  }
  void broadcast(std::string& bytes, int root) override {
    std::unique_lock<std::mutex> lock(shared_->mutex);
    if (rank_ == root) shared_->bytes = bytes;
    shared_->wait(lock);
    bytes = shared_->bytes;
    shared_->wait(lock);
  }
  void barrier() override {
    std::unique_lock<std::mutex> lock(shared_->mutex);
    shared_->wait(lock);
  }
  std::unique_ptr<Comm> duplicate() override {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    const size_t k = duplicates_++;
    if (shared_->duplicates.size() <= k)
      shared_->duplicates.push_back(std::make_shared<ThreadGroup::Shared>(shared_->size));
    return std::make_unique<ThreadComm>(shared_->duplicates[k], rank_);
  }
  bool concurrent() const override { return true; }

 private:
  // Every rank gets the values combined in rank order, so the bits agree.
  void reduce(std::vector<double>& v, ReduceOp op) {
    std::unique_lock<std::mutex> lock(shared_->mutex);
    shared_->slots[rank_] = v;
    shared_->wait(lock);
    for (size_t i = 0; i < v.size(); ++i) {
      double acc = shared_->slots[0].at(i);
      for (int r = 1; r < shared_->size; ++r) {
        const double x = shared_->slots[r].at(i);
        acc = op == ReduceOp::sum   ? acc + x
              : op == ReduceOp::max ? std::max(acc, x)
                                    : std::min(acc, x);
      }
      v[i] = acc;
    }
    shared_->wait(lock);  // nobody overwrites a slot before every rank has read it
  }

  std::shared_ptr<ThreadGroup::Shared> shared_;
  int rank_;
  size_t duplicates_ = 0;
};

}  // namespace

ThreadGroup::ThreadGroup(int ranks) : shared_(std::make_shared<Shared>(ranks)) {
  PRM_CHECK(ranks >= 1, "ThreadGroup: need at least one rank, got ", ranks);
  for (int r = 0; r < ranks; ++r) comms_.push_back(std::make_unique<ThreadComm>(shared_, r));
}
ThreadGroup::~ThreadGroup() = default;
Comm& ThreadGroup::comm(int rank) { return *comms_.at(static_cast<size_t>(rank)); }
int ThreadGroup::size() const { return shared_->size; }

// ---- the process group -----------------------------------------------------------------------

namespace {

int env_int(const char* const* names, int fallback) {
  for (const char* const* n = names; *n; ++n)
    if (const char* v = std::getenv(*n)) return std::atoi(v);
  return fallback;
}

const char* const kSizeVars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS",
                                 nullptr};
const char* const kRankVars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID",
                                 nullptr};

std::unique_ptr<Comm>& world_slot() {
  static std::unique_ptr<Comm> comm;
  return comm;
}

bool g_mpi_shut_down = false;  // MPI_Finalize ran: MPI cannot start again in this process

}  // namespace

int launched_ranks() { return env_int(kSizeVars, 1); }
int launched_rank() { return env_int(kRankVars, 0); }

Comm& world(Device device) {
  std::unique_ptr<Comm>& comm = world_slot();
  if (comm) return *comm;
  const bool launcher = env_int(kSizeVars, -1) > 0;
  PRM_CHECK(!(launcher && g_mpi_shut_down),
            "the MPI process group was shut down (shutdown_world) and MPI cannot start again");
  if (launcher) comm = make_mpi_comm(device);
  if (!comm) {
    PRM_CHECK(launched_ranks() <= 1, "started by an MPI launcher with ", launched_ranks(),
              " ranks, but this prm was built without MPI (USE_MPI=0): each rank would train "
              "alone; run `make deps` (OpenMPI) and rebuild, or start one process");
    comm = std::make_unique<SingleComm>();
  }
  return *comm;
}

bool world_initialised() { return world_slot() != nullptr; }

void shutdown_world() {
  world_slot().reset();
  if (mpi_finalize()) g_mpi_shut_down = true;
}

int pick_local_gpu(int local_rank, int local_ranks, int gpus) {
  PRM_CHECK(gpus >= 1, "no CUDA device visible to this rank");
  PRM_CHECK(local_ranks <= gpus, "the launcher started ", local_ranks,
            " ranks on this node, which has ", gpus, " CUDA device", gpus == 1 ? "" : "s",
            ": each rank needs a GPU of its own (NCCL refuses two ranks on one GPU); ",
            "start at most ", gpus, " rank", gpus == 1 ? "" : "s", " per node (mpirun -np ", gpus,
            " on one machine) or train on the CPU");
  PRM_CHECK(local_rank >= 0 && local_rank < local_ranks, "local rank ", local_rank, " out of [0, ",
            local_ranks, ")");
  return local_rank;
}

void abort_other_ranks(int code) {
  if (world_initialised() && world().size() > 1) mpi_abort(code);
}

void agree(Comm& comm, const std::function<void()>& body) {
  if (comm.size() == 1) {
    body();
    return;
  }
  std::string message;
  try {
    body();
  } catch (const std::exception& e) {
    message = e.what();
    if (message.empty()) message = "unknown error";
  }
  std::vector<double> failed(static_cast<size_t>(comm.size()), 0.0);
  failed[static_cast<size_t>(comm.rank())] = message.empty() ? 0.0 : 1.0;
  comm.all_reduce(failed.data(), failed.size(), ReduceOp::sum);
  std::string ranks;
  for (size_t r = 0; r < failed.size(); ++r)
    if (failed[r] != 0) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  if (ranks.empty()) return;
  if (!message.empty()) throw CollectiveError(str_cat("rank ", comm.rank(), ": ", message));
  throw CollectiveError(str_cat("rank ", comm.rank(), ": stopping because rank(s) ", ranks,
                                " failed (their error is printed above)"));
}

#if !PRM_USE_MPI
std::unique_ptr<Comm> make_mpi_comm(Device) { return nullptr; }
void mpi_abort(int code) { std::_Exit(code); }
bool mpi_finalize() { return false; }
#endif

}  // namespace prm
