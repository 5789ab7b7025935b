#include "args.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "tensor/allocator.h"
#include "tensor/error.h"

namespace prm {

namespace {

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t k = 0; k < items.size(); ++k) out += (k ? sep : "") + items[k];
  return out;
}

}  // namespace

Args::Args(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

Args& Args::declare(const std::string& name, Flag flag) {
  PRM_CHECK(flags_.count(name) == 0, "internal: flag --", name, " declared twice");
  order_.push_back(name);
  flags_[name] = std::move(flag);
  return *this;
}

Args& Args::option(const std::string& name, const std::string& help, const std::string& def) {
  return declare(name, Flag{help, def, true, false, false, {}});
}

Args& Args::required(const std::string& name, const std::string& help) {
  return declare(name, Flag{help, "", false, true, false, {}});
}

Args& Args::optional(const std::string& name, const std::string& help) {
  return declare(name, Flag{help, "", false, false, false, {}});
}

Args& Args::toggle(const std::string& name, const std::string& help) {
  return declare(name, Flag{help, "", false, false, true, {}});
}

Args& Args::choice(const std::string& name, const std::vector<std::string>& choices,
                   const std::string& help, const std::string& def) {
  PRM_CHECK(!choices.empty(), "internal: --", name, " has no choices");
  PRM_CHECK(def.empty() || std::find(choices.begin(), choices.end(), def) != choices.end(),
            "internal: --", name, " default '", def, "' is not one of its choices");
  return declare(name, Flag{help, def, !def.empty(), false, false, choices});
}

Args& Args::required_choice(const std::string& name, const std::vector<std::string>& choices,
                            const std::string& help) {
  PRM_CHECK(!choices.empty(), "internal: --", name, " has no choices");
  return declare(name, Flag{help, "", false, true, false, choices});
}

bool Args::parse(int argc, char** argv) {
  const std::string see = " (see prm " + command_ + " --help)";
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << help();
      return false;
    }
    PRM_CHECK(arg.rfind("--", 0) == 0 && arg.size() > 2, "unexpected argument '", arg,
              "' (flags are --long-names; see prm ", command_, " --help)");
    std::string name = arg.substr(2);
    std::string value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    auto it = flags_.find(name);
    PRM_CHECK(it != flags_.end(), "unknown flag --", name, see);
    Flag& flag = it->second;
    if (flag.is_toggle) {
      PRM_CHECK(!inline_value, "--", name, " is a switch and takes no value");
      flag.value = "1";
      flag.has_value = true;
      continue;
    }
    if (!inline_value) {
      PRM_CHECK(i + 1 < argc, "--", name, " needs a value");
      value = argv[++i];
      // A flag where a value is expected: the value was forgotten. A value that really starts
      // with "--" is given as --name=value.
      PRM_CHECK(value.rfind("--", 0) != 0, "--", name, " needs a value, got the flag '", value,
                "' (write --", name, "=", value, " if that is the value)");
    }
    PRM_CHECK(!value.empty(), "--", name, " needs a value, got an empty one");
    PRM_CHECK(flag.choices.empty() ||
                  std::find(flag.choices.begin(), flag.choices.end(), value) != flag.choices.end(),
              "--", name, " must be one of ", join(flag.choices, ", "), "; got '", value, "'");
    flag.value = value;
    flag.has_value = true;
  }
  for (const auto& name : order_) {
    const Flag& flag = flags_.at(name);
    PRM_CHECK(!flag.is_required || flag.has_value, "missing required flag --", name, see);
  }
  return true;
}

const Args::Flag& Args::find(const std::string& name) const {
  auto it = flags_.find(name);
  PRM_CHECK(it != flags_.end(), "internal: undeclared flag --", name);
  return it->second;
}

bool Args::has(const std::string& name) const { return find(name).has_value; }

std::string Args::get(const std::string& name) const {
  const Flag& flag = find(name);
  PRM_CHECK(flag.has_value, "--", name, " was not given");
  return flag.value;
}

int64_t Args::get_int(const std::string& name) const {
  const std::string v = get(name);
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  PRM_CHECK(!v.empty() && *end == '\0' && errno != ERANGE, "--", name,
            " expects an integer, got '", v, "'");
  return x;
}

double Args::get_double(const std::string& name) const {
  const std::string v = get(name);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  PRM_CHECK(!v.empty() && *end == '\0', "--", name, " expects a number, got '", v, "'");
  return x;
}

bool Args::get_toggle(const std::string& name) const { return find(name).has_value; }

Device Args::get_device(const std::string& name) const {
  const std::string v = get(name);
  PRM_CHECK(v == "cpu" || v == "cuda", "--", name, " must be one of cpu, cuda; got '", v, "'");
  const Device device = parse_device(v);
  PRM_CHECK(device == Device::cpu || cuda_available(), "--", name,
            " cuda but no CUDA device is available");
  return device;
}

std::string Args::help() const {
  std::ostringstream os;
  os << "usage: prm " << command_ << " [flags]\n" << summary_ << "\n\nflags:\n";
  for (const auto& name : order_) {
    const Flag& flag = flags_.at(name);
    os << "  --" << name;
    if (!flag.choices.empty()) os << " " << join(flag.choices, "|");
    else if (!flag.is_toggle) os << " VALUE";
    os << "\n      " << flag.help;
    if (flag.is_required) os << " (required)";
    else if (flag.has_value && !flag.is_toggle) os << " (default: " << flag.value << ")";
    os << "\n";
  }
  os << "A value that starts with -- is given as --flag=value.\n";
  return os.str();
}

}  // namespace prm
