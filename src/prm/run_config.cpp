#include "prm/run_config.h"

namespace prm {

Json TrainConfig::to_json() const {
  Json j = Json::object();
  j.set("data", data);
  j.set("format", format);
  j.set("data_root", data_root);
  j.set("train_fingerprint", train_fingerprint);
  j.set("train_split", train_split);
  j.set("val_split", val_split);
  j.set("arch", arch);
  j.set("width", Json(width));
  j.set("pretrained", pretrained);
  j.set("size", Json(size));
  j.set("batch", Json(batch));
  j.set("epochs", Json(epochs));
  j.set("lr", Json(lr));
  Json drops = Json::array();
  for (int64_t e : lr_drops) drops.push_back(Json(e));
  j.set("lr_drops", drops);
  j.set("backbone_lr_mult", Json(backbone_lr_mult));
  j.set("momentum", Json(momentum));
  j.set("weight_decay", Json(weight_decay));
  j.set("device", device);
  j.set("precision", precision);
  j.set("seed", Json(seed));
  j.set("workers", Json(workers));
  j.set("head", head.to_json());
  j.set("skip_bad", skip_bad);
  j.set("sync_bn", sync_bn);
  j.set("micro_batches", Json(micro_batches));
  j.set("out", out);
  return j;
}

TrainConfig TrainConfig::from_json(const Json& j, const std::string& source) {
  TrainConfig c;
  try {
    c.data = j.at("data").as_string();
    c.format = "voc";  // older runs: VOC was the only layout
    if (const Json* f = j.find("format")) c.format = f->as_string();
    if (const Json* r = j.find("data_root")) c.data_root = r->as_string();  // older runs: none
    if (const Json* f = j.find("train_fingerprint")) c.train_fingerprint = *f;
    c.train_split = j.at("train_split").as_string();
    c.val_split = j.at("val_split").as_string();
    c.arch = j.at("arch").as_string();
    c.width = j.at("width").as_int64();
    c.pretrained = j.at("pretrained").as_string();
    c.size = j.at("size").as_int64();
    c.batch = j.at("batch").as_int64();
    c.epochs = j.at("epochs").as_int64();
    c.lr = j.at("lr").as_double();
    if (const Json* drops = j.find("lr_drops"))
      for (const Json& e : drops->items()) c.lr_drops.push_back(e.as_int64());
    c.backbone_lr_mult = j.at("backbone_lr_mult").as_double();
    c.momentum = j.at("momentum").as_double();
    c.weight_decay = j.at("weight_decay").as_double();
    c.device = j.at("device").as_string();
    if (const Json* p = j.find("precision")) c.precision = p->as_string();  // older runs: fp32
    PRM_CHECK(j.at("seed").get_uint64(c.seed), "seed is not an unsigned integer");
    c.workers = j.at("workers").as_int64();
    if (const Json* h = j.find("head")) {
      c.head = PrmHead::from_json(*h, "head");
    } else {  // runs from before the head was stored: its rule alone
      c.head.peak_grad = parse_peak_grad(j.at("peak_grad").as_string());
    }
    c.skip_bad = j.at("skip_bad").as_bool();
    if (const Json* sync = j.find("sync_bn")) c.sync_bn = sync->as_bool();  // older runs: off
    if (const Json* m = j.find("micro_batches")) c.micro_batches = m->as_int64();
    c.out = j.at("out").as_string();
  } catch (const Error& e) {
    throw Error(str_cat(source, ": damaged training configuration: ", e.what()));
  }
  return c;
}

}  // namespace prm
