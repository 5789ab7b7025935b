// The subcommands of `prm`. Each takes the arguments after its name and returns the exit code;
// errors are thrown as prm::Error and printed by main as one line on stderr.
#pragma once
#include <memory>
#include <string>

#include "tensor/dtype.h"

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
int cmd_convert(int argc, char** argv);
int cmd_data(int argc, char** argv);

class Args;
// Shared by prm infer and prm eval --weights (cmd_infer.cpp): the inference flags, and the
// prediction pass over a split (VOC: the images of ImageSets/Main and ImageSets/Segmentation,
// into the text files; format "coco": the annotation file's images, into the JSON results).
void declare_inference_flags(Args& args);
void predict_split_with_weights(const Args& args, const std::string& data,
                                const std::string& format, const std::string& split,
                                const std::string& pred_dir);
}  // namespace prm
