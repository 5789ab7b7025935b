#include "args.h"

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "tensor/allocator.h"
#include "tensor/error.h"

namespace prm {

Args::Args(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

Args& Args::option(const std::string& name, const std::string& help, const std::string& def) {
  order_.push_back(name);
  flags_[name] = Flag{help, def, true, false, false};
  return *this;
}

Args& Args::required(const std::string& name, const std::string& help) {
  order_.push_back(name);
  flags_[name] = Flag{help, "", false, true, false};
  return *this;
}

Args& Args::optional(const std::string& name, const std::string& help) {
  order_.push_back(name);
  flags_[name] = Flag{help, "", false, false, false};
  return *this;
}

Args& Args::toggle(const std::string& name, const std::string& help) {
  order_.push_back(name);
  flags_[name] = Flag{help, "", false, false, true};
  return *this;
}

bool Args::parse(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << help();
      return false;
    }
    PRM_CHECK(arg.rfind("--", 0) == 0, "prm ", command_, ": unexpected argument '", arg,
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
    PRM_CHECK(it != flags_.end(), "prm ", command_, ": unknown flag --", name, " (see prm ",
              command_, " --help)");
    Flag& flag = it->second;
    if (flag.is_toggle) {
      PRM_CHECK(!inline_value, "prm ", command_, ": --", name, " takes no value");
      flag.value = "1";
      flag.has_value = true;
      continue;
    }
    if (!inline_value) {
      PRM_CHECK(i + 1 < argc, "prm ", command_, ": --", name, " needs a value");
      value = argv[++i];
    }
    flag.value = value;
    flag.has_value = true;
  }
  for (const auto& name : order_) {
    const Flag& flag = flags_.at(name);
    PRM_CHECK(!flag.is_required || flag.has_value, "prm ", command_, ": missing required flag --",
              name, " (see prm ", command_, " --help)");
  }
  return true;
}

const Args::Flag& Args::find(const std::string& name) const {
  auto it = flags_.find(name);
  PRM_CHECK(it != flags_.end(), "prm ", command_, ": internal: undeclared flag --", name);
  return it->second;
}

bool Args::has(const std::string& name) const { return find(name).has_value; }

std::string Args::get(const std::string& name) const {
  const Flag& flag = find(name);
  PRM_CHECK(flag.has_value, "prm ", command_, ": --", name, " was not given");
  return flag.value;
}

int64_t Args::get_int(const std::string& name) const {
  const std::string v = get(name);
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  PRM_CHECK(!v.empty() && *end == '\0', "prm ", command_, ": --", name,
            " expects an integer, got '", v, "'");
  return x;
}

double Args::get_double(const std::string& name) const {
  const std::string v = get(name);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  PRM_CHECK(!v.empty() && *end == '\0', "prm ", command_, ": --", name,
            " expects a number, got '", v, "'");
  return x;
}

bool Args::get_toggle(const std::string& name) const { return find(name).has_value; }

Device Args::get_device(const std::string& name) const {
  const Device device = parse_device(get(name));
  PRM_CHECK(device == Device::cpu || cuda_available(), "prm ", command_, ": --", name,
            " cuda but no CUDA device is available");
  return device;
}

std::string Args::help() const {
  std::ostringstream os;
  os << "usage: prm " << command_ << " [flags]\n" << summary_ << "\n\nflags:\n";
  for (const auto& name : order_) {
    const Flag& flag = flags_.at(name);
    os << "  --" << name << (flag.is_toggle ? "" : " VALUE") << "\n      " << flag.help;
    if (flag.is_required) os << " (required)";
    else if (flag.has_value && !flag.is_toggle) os << " (default: " << flag.value << ")";
    os << "\n";
  }
  return os.str();
}

}  // namespace prm
