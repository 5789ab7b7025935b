# PRM-from-scratch. `make` builds build/prm and build/prm_tests; `make test` runs the tests that
# need no GPU; `make test-gpu` the CUDA tests (fail loudly without a GPU); `make asan` the tests
# under AddressSanitizer + UBSan. Switches (same meaning as in CMakeLists.txt):
#   USE_CUDA=0|1      CUDA backend (default: 1 when nvcc is found)
#   USE_CUDNN=0|1     cuDNN convolution engine (default: USE_CUDA)
#   USE_OPENBLAS=0|1  OpenBLAS for the CPU GEMM instead of our own (default: 0; with 1, `make deps`
#                     installs libopenblas-dev)
#   ARCH_FLAGS=...    extra code-generation flags (default: none, a binary for any x86-64; the GEMM
#                     picks its AVX-512 / AVX2 / scalar kernels at run time). -march=native
#                     builds for this CPU only
#   USE_MPI=0|1       data-parallel training under mpirun (default: 1 when OpenMPI is present,
#                     after `make deps`); a plain `prm train` never needs MPI at run time
#   USE_NCCL=0|1      NCCL all-reduce of CUDA tensors (default: USE_CUDA and USE_MPI, when nccl.h
#                     is in the CUDA toolkit or the system's include folders)
#   BUILD=dir         build folder (default build)

BUILD ?= build
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(shell command -v nvcc 2>/dev/null || (test -x $(CUDA_HOME)/bin/nvcc && echo $(CUDA_HOME)/bin/nvcc))
USE_CUDA ?= $(if $(NVCC),1,0)
USE_CUDNN ?= $(USE_CUDA)
# OpenBLAS only when asked for (`make deps` then installs it).
USE_OPENBLAS ?= 0
WANT_OPENBLAS := $(USE_OPENBLAS)
WANT_MPI := $(if $(filter command line environment,$(origin USE_MPI)),$(USE_MPI),1)
MPI_ASKED := $(if $(filter command line environment,$(origin USE_MPI)),$(filter 1,$(USE_MPI)),)
USE_MPI ?= $(shell command -v mpicc >/dev/null 2>&1 && mpicc --showme:incdirs >/dev/null 2>&1 && echo 1 || echo 0)
# nccl.h in the CUDA toolkit (NVIDIA's installer) or in the system's include folders (Debian's and
# NVIDIA's libnccl-dev packages put it in /usr/include); libnccl then sits on the default linker path.
NCCL_HEADER := $(firstword $(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h \
                 /usr/include/x86_64-linux-gnu/nccl.h /usr/local/include/nccl.h))
USE_NCCL ?= $(if $(filter 1,$(USE_CUDA)),$(if $(filter 1,$(USE_MPI)),$(if $(NCCL_HEADER),1,0),0),0)
MPI_INCLUDES = $(if $(filter 1,$(USE_MPI)),$(addprefix -isystem ,$(shell mpicc --showme:incdirs)))
MPI_LIBS = $(if $(filter 1,$(USE_MPI)),$(addprefix -L,$(shell mpicc --showme:libdirs)) $(addprefix -l,$(shell mpicc --showme:libs)))
SANITIZE ?= 0
ARCH_FLAGS ?=

CXX ?= g++
INCLUDES := -Isrc -I/usr/include/stb $(if $(wildcard third_party),-Ithird_party -Ithird_party/stb)
DEFINES = -DPRM_USE_CUDA=$(USE_CUDA) -DPRM_USE_CUDNN=$(USE_CUDNN) -DPRM_USE_OPENBLAS=$(USE_OPENBLAS) \
          -DPRM_USE_MPI=$(USE_MPI) -DPRM_USE_NCCL=$(USE_NCCL)
WARN := -Wall -Wextra -Werror
OPT := -O3 $(ARCH_FLAGS)
ifeq ($(SANITIZE),1)
  OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
# stb's JPEG writer left-shifts negative ints (UB in C++17, harmless in practice): exempt the one
# file that compiles stb from that single check, not our whole code.
$(BUILD)/src/data/image.o: OPT += $(if $(filter 1,$(SANITIZE)),-fno-sanitize=shift-base)
# -ffp-contract=off: the CPU computes what the source says. g++ would otherwise contract a * b + c
# into an FMA wherever it likes, differently in two loops that share one formula (a fused kernel
# and its unfused twin gave 1-ulp differences), and the CPU is the reference everything else is
# compared to.
CXXFLAGS = -std=c++17 $(OPT) -ffp-contract=off -fopenmp $(WARN) $(INCLUDES) $(MPI_INCLUDES) $(DEFINES) -MMD -MP
ifeq ($(USE_CUDA),1)
  CXXFLAGS += -I$(CUDA_HOME)/include
endif
# A nccl.h outside the toolkit and the compiler's own folders (/usr/include needs no flag; naming
# it with -isystem would reorder the C++ headers' include_next chain).
NCCL_INCLUDE_DIR := $(filter-out $(CUDA_HOME)/include/ /usr/include/,$(dir $(NCCL_HEADER)))
ifeq ($(USE_NCCL),1)
  CXXFLAGS += $(addprefix -isystem ,$(NCCL_INCLUDE_DIR))
endif

GENCODE := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90]
NVCCFLAGS = -std=c++17 -O3 --extended-lambda $(GENCODE) -Werror all-warnings \
            -Xcompiler "-Wall -Wextra -Werror -fopenmp" $(INCLUDES) $(DEFINES) -MMD -MP

LDLIBS = -fopenmp -lpthread
ifeq ($(USE_CUDA),1)
  LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublas
  ifeq ($(USE_CUDNN),1)
    LDLIBS += -lcudnn
  endif
endif
LDLIBS += $(if $(filter 1,$(USE_OPENBLAS)),-lopenblas)
LDLIBS += $(if $(filter 1,$(USE_NCCL)),-lnccl) $(MPI_LIBS)

# Sources: every .cpp under src/ is library code; .cu files only with CUDA; files whose name
# contains "cudnn" only with cuDNN. (MPI code is compiled always and guarded by PRM_USE_MPI, so
# that a `make` whose `deps` step has just installed OpenMPI stays consistent.)
LIB_CPP := $(shell find src -name '*.cpp' | sort)
LIB_CU := $(if $(filter 1,$(USE_CUDA)),$(shell find src -name '*.cu' | sort))
ifneq ($(USE_CUDNN),1)
  LIB_CPP := $(filter-out %cudnn.cpp,$(LIB_CPP))
  LIB_CU := $(filter-out %cudnn.cu,$(LIB_CU))
endif
APP_CPP := $(shell find apps -name '*.cpp' | sort)
TEST_CPP := $(shell find tests -name '*.cpp' | sort)

LIB_OBJ := $(LIB_CPP:%.cpp=$(BUILD)/%.o) $(LIB_CU:%.cu=$(BUILD)/%.cu.o)
APP_OBJ := $(APP_CPP:%.cpp=$(BUILD)/%.o)
TEST_OBJ := $(TEST_CPP:%.cpp=$(BUILD)/%.o)
LIB := $(BUILD)/libprm.a

.PHONY: all deps test test-gpu asan demo clean info
all: $(BUILD)/prm $(BUILD)/prm_tests

info:
	@echo "prm build: USE_CUDA=$(USE_CUDA) ($(if $(NVCC),nvcc $(NVCC),no nvcc)) USE_CUDNN=$(USE_CUDNN) USE_OPENBLAS=$(USE_OPENBLAS) ARCH_FLAGS=$(or $(ARCH_FLAGS),none) USE_MPI=$(USE_MPI) USE_NCCL=$(USE_NCCL) BUILD=$(BUILD)"

# Installs the Debian packages the build needs when they are missing (runs as root in CI).
# OpenMPI is optional unless USE_MPI=1 was asked for: where it cannot be installed (a machine that
# reaches no package registry) the build goes on without MPI, as USE_MPI's default then says.
deps:
	@required=""; optional=""; \
	test -f /usr/include/stb/stb_image.h || test -f third_party/stb/stb_image.h || required="$$required libstb-dev"; \
	test -f /usr/include/doctest/doctest.h || test -f third_party/doctest/doctest.h || required="$$required doctest-dev"; \
	if [ "$(WANT_OPENBLAS)" = 1 ] && ! test -f /usr/include/x86_64-linux-gnu/openblas_config.h; then \
	  command -v apt-get >/dev/null && required="$$required libopenblas-dev"; fi; \
	if [ "$(WANT_MPI)" != 0 ] && ! command -v mpicc >/dev/null && command -v apt-get >/dev/null; then \
	  if [ "$(MPI_ASKED)" = 1 ]; then required="$$required libopenmpi-dev openmpi-bin"; \
	  else optional="libopenmpi-dev openmpi-bin"; fi; fi; \
	[ -z "$$required$$optional" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	echo "make deps: installing$$required $$optional"; \
	updated=0; $$SUDO apt-get update -qq && updated=1; \
	install() { [ "$$updated" = 1 ] && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq "$$@" >/dev/null; }; \
	if [ -n "$$required" ] && ! install $$required; then \
	  echo "make deps: could not install$$required" >&2; exit 1; fi; \
	if [ -n "$$optional" ] && ! install $$optional; then \
	  echo "make deps: could not install $$optional (no package registry?); building without MPI (USE_MPI=0)" >&2; fi; \
	exit 0

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/prm: $(APP_OBJ) $(LIB)
	$(CXX) $(OPT) -o $@ $(APP_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/prm_tests: $(TEST_OBJ) $(LIB)
	$(CXX) $(OPT) -o $@ $(TEST_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/%.o: %.cpp | deps info
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu | deps info
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

test: $(BUILD)/prm_tests $(BUILD)/prm
	@PRM_BIN=$(BUILD)/prm tools/run_tests.sh $(BUILD)/prm_tests

# CUDA tests only; PRM_REQUIRE_GPU makes them fail when no GPU is visible.
test-gpu: $(BUILD)/prm_tests $(BUILD)/prm
	@PRM_BIN=$(BUILD)/prm PRM_REQUIRE_GPU=1 tools/run_tests.sh $(BUILD)/prm_tests --test-suite=cuda

# The main job on the CPU in a few minutes: synthetic VOC data, training, evaluation, pictures,
# all in demo/ (tools/demo.sh says what each file is).
demo: $(BUILD)/prm
	PRM=$(BUILD)/prm tools/demo.sh

asan:
	$(MAKE) BUILD=build-asan USE_CUDA=0 SANITIZE=1 build-asan/prm_tests build-asan/prm
	PRM_BIN=build-asan/prm ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 tools/run_tests.sh build-asan/prm_tests

clean:
	rm -rf $(BUILD) build-asan

-include $(LIB_OBJ:.o=.d) $(APP_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
