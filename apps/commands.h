// The subcommands of `prm`. Each takes the arguments after its name and returns the exit code;
// errors are thrown as prm::Error and printed by main as one line on stderr.
#pragma once

namespace prm {
int cmd_gradcheck(int argc, char** argv);
int cmd_forward(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_synth(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_loaderbench(int argc, char** argv);
int cmd_graph(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_infer(int argc, char** argv);
}  // namespace prm
