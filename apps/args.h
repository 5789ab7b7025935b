// A small command-line parser for `prm` subcommands: --long-name value (or --long-name=value)
// flags, --switches, choices from a fixed list, --help. Every error is one line naming the flag
// (main() prefixes it with "prm <command>: error: ", so messages here do not repeat the command).
//
// A value that starts with "--" is taken only as --flag=value: `prm synth --out --help` is an
// error ("--out needs a value"), not a dataset written into a folder named "--help".
#pragma once
#include <map>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace prm {

// Choices several commands share.
inline const std::vector<std::string> kArchChoices = {"resnet18", "resnet34", "resnet50",
                                                      "resnet101"};
inline const std::vector<std::string> kDeviceChoices = {"cpu", "cuda"};
inline const std::vector<std::string> kPrecisionChoices = {"fp32", "tf32", "bf16"};

class Args {
 public:
  Args(std::string command, std::string summary);

  // Declare before parse(). A flag with no default is required unless declared optional.
  Args& option(const std::string& name, const std::string& help, const std::string& def);
  Args& required(const std::string& name, const std::string& help);
  Args& optional(const std::string& name, const std::string& help);  // no default, may be absent
  Args& toggle(const std::string& name, const std::string& help);    // a switch, no value
  // A value from `choices`, checked by parse(). `def` is the default (one of the choices), or ""
  // for a flag that may be absent (has() is false then).
  Args& choice(const std::string& name, const std::vector<std::string>& choices,
               const std::string& help, const std::string& def);
  Args& required_choice(const std::string& name, const std::vector<std::string>& choices,
                        const std::string& help);

  // Returns false when --help was given (help already printed to stdout).
  bool parse(int argc, char** argv);

  bool has(const std::string& name) const;  // given or defaulted
  std::string get(const std::string& name) const;
  int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;
  bool get_toggle(const std::string& name) const;
  // A device flag: "cpu" or "cuda", and cuda only when a CUDA device is visible.
  Device get_device(const std::string& name) const;
  std::string help() const;

 private:
  struct Flag {
    std::string help;
    std::string value;
    bool has_value = false;
    bool is_required = false;
    bool is_toggle = false;
    std::vector<std::string> choices;  // empty: any value
  };
  Args& declare(const std::string& name, Flag flag);
  const Flag& find(const std::string& name) const;
  std::string command_;
  std::string summary_;
  std::vector<std::string> order_;
  std::map<std::string, Flag> flags_;
};

}  // namespace prm
