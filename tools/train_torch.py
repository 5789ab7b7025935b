#!/usr/bin/env python3
"""PyTorch twin of `prm train`: an end-to-end oracle for the training loop (run by hand, like
tools/bench_torch.py; never by CI, never a dependency of the build). docs/testing.md, "End-to-end
oracle for training", has the recipe, the commands and the table.

The same recipe as src/prm/train.cpp, written independently of prm's code:
  data      a VOC-layout root (what `prm synth --out DIR` writes, or VOCdevkit/VOC2012): ids from
            ImageSets/Main/<split>.txt, labels from Annotations/<id>.xml over the 20 VOC class
            names (the network always has 20 outputs, as prm's); a difficult object counts as a
            positive for training; for validation a class present only as difficult is ignored
  input     JPEG decoded by PIL, resized to --size x --size by bilinear interpolation with
            half-pixel centres and clamped edges, no antialiasing (prm's src/data/transforms.cpp,
            re-implemented here in float32 with the same operation order), flipped left-right
            per (seed, epoch, sample), ImageNet-normalised
  network   the fully convolutional ResNet of tools/bench_torch.py (torchvision layout, no
            avgpool/fc, 1x1 classifier conv with bias) at --arch / --width; backbone convs
            Kaiming normal (fan_out, ReLU gain), BN weight 1 and bias 0, classifier
            torch.nn.Conv2d's default (U(-1/sqrt(fan_in), 1/sqrt(fan_in)))
  scores    class response maps upsampled x8 (bilinear, align_corners=True), then the official
            PeakStimulation (3x3 window peaks at or above the median), with --peak-grad official
            (dM = peak_map * ds) or mean (dM = peak_map * ds / n_c)
  loss      torch.nn.functional.multilabel_soft_margin_loss
  SGD       torch.optim.SGD, two groups: backbone at lr * --backbone-lr-mult, classifier at lr;
            momentum, weight decay on every parameter; the rate x0.1 from each epoch in
            --lr-drops (1-based) on
  batches   every epoch: a shuffled order cut into batches of --batch, the last one partial
  val mAP   after every epoch: eval-mode batch norm, no flip, the class scores of the val
            images, VOC 2012 classification AP per class (own code below), mean over the
            classes present in the split

--rng prm (default) replays prm's own random streams from --seed: the initial weights
(std::mt19937_64(seed) drawn through libstdc++'s normal_distribution and
uniform_real_distribution in prm's construction order), the epoch order (std::shuffle with
std::mt19937_64(seed * 1000003 + epoch), libstdc++ 12's algorithm) and the flips (prm's splitmix
rule). So, given the seed, both programs start from the same weights and see the same batches with
the same flips; what remains different is the JPEG decoder (PIL's libjpeg-turbo vs stb_image:
about 1.4% of the decoded values of a `prm synth` JPEG differ, by 3 levels at most) and float
rounding (other GEMM/convolution summation orders), which training amplifies: the losses agree
for the first steps and drift apart after a few (the peak sets are discrete; PyTorch against
itself with 1 or 2 threads drifts apart as fast), so final numbers are compared over seeds.
--rng torch draws all three from torch's generator instead (a fully independent second opinion).

Prints one JSON line per epoch, as prm writes RUN/metrics.jsonl: epoch, step, loss (mean of the
epoch's step losses), lr (the classifier's), images_per_s, val_map. --out RUN also writes them to
RUN/metrics.jsonl, every step's loss to RUN/steps.jsonl and the final weights and batch-norm
buffers to RUN/weights.safetensors (prm's names: `prm eval --weights` reads it).

  /usr/bin/python3 tools/train_torch.py --data /tmp/synth --out /tmp/run-torch --arch resnet18 \\
      --width 16 --size 96 --batch 8 --epochs 15 --lr 0.05 --lr-drops 12 --backbone-lr-mult 1 \\
      --peak-grad mean --seed 1 --threads 1
"""
import argparse, json, math, os, sys, time
import xml.etree.ElementTree as ET

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import FCResNet, LAYOUTS, PeakStimulation, upsample8  # noqa: E402

VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]
MASK64 = (1 << 64) - 1


# ---- prm's random streams: std::mt19937_64 and libstdc++ 12's distributions ----

class MT19937_64:
    """std::mt19937_64, the raw 64-bit outputs, generated 312 at a time with numpy."""
    N, M = 312, 156
    UPPER, LOWER = np.uint64(0xFFFFFFFF80000000), np.uint64(0x7FFFFFFF)
    A = np.uint64(0xB5026F5AA96619E9)

    def __init__(self, seed):
        mt = [seed & MASK64]
        for i in range(1, self.N):
            prev = mt[-1]
            mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & MASK64)
        self.mt = np.array(mt, dtype=np.uint64)
        self.buf = np.zeros(0, dtype=np.uint64)  # generated, not yet consumed

    def _twist(self):
        mt, one = self.mt, np.uint64(1)

        def mix(y):
            return (y >> one) ^ np.where((y & one) != 0, self.A, np.uint64(0))
        n, m = self.N, self.M
        # In libstdc++'s order: every read below sees the value the sequential loop would see.
        y = (mt[:n - m] & self.UPPER) | (mt[1:n - m + 1] & self.LOWER)
        mt[:n - m] = mt[m:] ^ mix(y)
        y = (mt[n - m:n - 1] & self.UPPER) | (mt[n - m + 1:] & self.LOWER)
        mt[n - m:n - 1] = mt[:m - 1] ^ mix(y)
        y = (mt[n - 1:] & self.UPPER) | (mt[:1] & self.LOWER)
        mt[n - 1:] = mt[m - 1:m] ^ mix(y)
        z = mt.copy()
        z ^= (z >> np.uint64(29)) & np.uint64(0x5555555555555555)
        z ^= (z << np.uint64(17)) & np.uint64(0x71D67FFFEDA60000)
        z ^= (z << np.uint64(37)) & np.uint64(0xFFF7EEE000000000)
        z ^= z >> np.uint64(43)
        return z

    def peek(self, k):
        """The next k outputs, not consumed."""
        parts = [self.buf]
        have = len(self.buf)
        while have < k:
            parts.append(self._twist())
            have += self.N
        self.buf = np.concatenate(parts)
        return self.buf[:k]

    def advance(self, k):
        self.peek(k)
        self.buf = self.buf[k:]

    def next(self):
        v = int(self.peek(1)[0])
        self.advance(1)
        return v


def canonical(raw):
    """std::generate_canonical<double, 53> of 64-bit outputs: double(raw) / 2^64, below 1."""
    u = raw.astype(np.float64) / 18446744073709551616.0
    return np.where(u >= 1.0, np.nextafter(1.0, 0.0), u)


def normal_draws(rng, n):
    """n values of a fresh std::normal_distribution<double>(0, 1) (Marsaglia's polar method:
    each accepted pair gives y * mult, then x * mult; an odd count leaves the last x unused)."""
    out = np.empty(n, dtype=np.float64)
    need, filled = (n + 1) // 2, 0
    while filled < n:
        trials = max(16, int((need - filled // 2) * 1.35) + 16)
        u = canonical(rng.peek(2 * trials))
        x = 2.0 * u[0::2] - 1.0
        y = 2.0 * u[1::2] - 1.0
        r2 = x * x + y * y
        ok = np.nonzero(~((r2 > 1.0) | (r2 == 0.0)))[0]
        take = ok[:(n - filled + 1) // 2]
        for t in take:  # math.log / math.sqrt: glibc's, as std::log / std::sqrt
            r = float(r2[t])
            mult = math.sqrt(-2.0 * math.log(r) / r)
            out[filled] = float(y[t]) * mult
            filled += 1
            if filled < n:
                out[filled] = float(x[t]) * mult
                filled += 1
        # Consumed: up to the last accepted trial used, or the whole chunk when more are needed.
        rng.advance(2 * (int(take[-1]) + 1) if filled >= n else 2 * trials)
    return out


def uniform_draws(rng, n, lo, hi):
    """n values of std::uniform_real_distribution<double>(lo, hi): u * (hi - lo) + lo."""
    u = canonical(rng.peek(n).copy())
    rng.advance(n)
    return u * (hi - lo) + lo


def lemire_below(rng, rng_range):
    """libstdc++ 12's uniform_int_distribution{0, rng_range - 1} on a 64-bit engine."""
    product = rng.next() * rng_range
    low = product & MASK64
    if low < rng_range:
        threshold = ((1 << 64) - rng_range) % rng_range
        while low < threshold:
            product = rng.next() * rng_range
            low = product & MASK64
    return product >> 64


def std_shuffle(order, rng):
    """std::shuffle of libstdc++ 12 (two swap positions per draw when the range allows it)."""
    n = len(order)
    if n == 0:
        return order
    assert n * n <= MASK64
    i = 1
    if n % 2 == 0:
        j = lemire_below(rng, 2)
        order[i], order[j] = order[j], order[i]
        i += 1
    while i != n:
        swap_range = i + 1
        x = lemire_below(rng, swap_range * (swap_range + 1))
        p1, p2 = x // (swap_range + 1), x % (swap_range + 1)
        order[i], order[p1] = order[p1], order[i]
        i += 1
        order[i], order[p2] = order[p2], order[i]
        i += 1
    return order


def prm_epoch_order(seed, epoch, n):
    return std_shuffle(list(range(n)), MT19937_64((seed * 1000003 + epoch) & MASK64))


def prm_flip(seed, epoch, sample):
    """prm's flip_for: splitmix64 of (seed, epoch, sample), the top bit."""
    z = ((seed * 0x9E3779B97F4A7C15) & MASK64) ^ ((epoch << 32) & MASK64) ^ (sample & MASK64)
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return (z >> 63) != 0


def init_like_prm(model, seed):
    """prm's ResNet initialisation, draw for draw: one std::mt19937_64(seed); every conv in
    construction order (stem, then per block conv1, conv2[, conv3], downsample) Kaiming normal
    fan_out; the classifier is drawn Kaiming normal too (discarded), then its weight and bias
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Values are drawn in double and rounded to float."""
    rng = MT19937_64(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                w = m.weight
                fan_out = w.shape[0] * w.shape[2] * w.shape[3]
                std = math.sqrt(2.0 / fan_out)
                v = normal_draws(rng, w.numel()) * std
                if name != "classifier":
                    w.copy_(torch.from_numpy(v.astype(np.float32)).view_as(w))
                else:
                    fan_in = w.shape[1] * w.shape[2] * w.shape[3]
                    bound = 1.0 / math.sqrt(fan_in)
                    w.copy_(torch.from_numpy(
                        uniform_draws(rng, w.numel(), -bound, bound).astype(np.float32)).view_as(w))
                    m.bias.copy_(torch.from_numpy(
                        uniform_draws(rng, m.bias.numel(), -bound, bound).astype(np.float32)))
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()


def init_torch(model, gen):
    """The same distributions from torch's generator (--rng torch)."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d):
                w = m.weight
                if name != "classifier":
                    fan_out = w.shape[0] * w.shape[2] * w.shape[3]
                    w.normal_(0.0, math.sqrt(2.0 / fan_out), generator=gen)
                else:
                    bound = 1.0 / math.sqrt(w.shape[1] * w.shape[2] * w.shape[3])
                    w.uniform_(-bound, bound, generator=gen)
                    m.bias.uniform_(-bound, bound, generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()


# ---- data ----

def resolve_root(path):
    if os.path.isdir(os.path.join(path, "ImageSets")):
        return path
    if os.path.isdir(os.path.join(path, "VOC2012", "ImageSets")):
        return os.path.join(path, "VOC2012")
    sys.exit(f"{path}: not a VOC root (no ImageSets/ here nor in VOC2012/)")


def read_split(root, split):
    with open(os.path.join(root, "ImageSets", "Main", split + ".txt")) as f:
        return [line.split()[0] for line in f if line.split()]


def read_labels(root, image_id):
    """Per class: 1 a non-difficult object, 0 difficult objects only, -1 none."""
    label = [-1] * len(VOC_CLASSES)
    tree = ET.parse(os.path.join(root, "Annotations", image_id + ".xml"))
    for obj in tree.getroot().iter("object"):
        name = obj.findtext("name").strip()
        if name not in VOC_CLASSES:
            sys.exit(f"{image_id}.xml: unknown class '{name}'")
        c = VOC_CLASSES.index(name)
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        label[c] = max(label[c], 0 if difficult else 1)
    return label


def taps(n_in, n_out):
    """Source taps of a half-pixel-centre resize: lo, hi (clamped) and the weight of hi."""
    scale = n_in / n_out
    s = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(s.astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (s - lo).astype(np.float32)


MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
SCALE = np.float32(1.0) / (np.float32(255.0) * STD)  # (v / 255 - mean) / std = v * scale + shift
SHIFT = -MEAN / STD


def decode(path):
    """H x W x 3 uint8 RGB (PIL; prm decodes with stb_image, which differs by a level or two in
    about 1% of the values of a JPEG)."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def load_resized(path, size):
    """[3, size, size] float32: bilinear resize (float32, prm's operation order), normalised."""
    img = decode(path).astype(np.int32)  # H, W, 3
    ylo, yhi, wy = taps(img.shape[0], size)
    xlo, xhi, wx = taps(img.shape[1], size)
    rows_lo, rows_hi = img[ylo], img[yhi]
    wx = wx[None, :, None]
    p00, p01 = rows_lo[:, xlo], rows_lo[:, xhi]
    p10, p11 = rows_hi[:, xlo], rows_hi[:, xhi]
    top = p00.astype(np.float32) + (p01 - p00).astype(np.float32) * wx
    bot = p10.astype(np.float32) + (p11 - p10).astype(np.float32) * wx
    v = top + (bot - top) * wy[:, None, None]
    v = v * SCALE + SHIFT
    return np.ascontiguousarray(v.transpose(2, 0, 1), dtype=np.float32)


def load_split(root, split, size):
    ids = read_split(root, split)
    images = np.stack([load_resized(os.path.join(root, "JPEGImages", i + ".jpg"), size)
                       for i in ids])
    labels = np.array([read_labels(root, i) for i in ids], dtype=np.int64)
    return ids, images, labels


# ---- VOC 2012 classification AP (own code, not prm's) ----

def voc_ap(scores, labels):
    """AP of one class: entries ranked by score descending (stable), label 0 ignored, area under
    the precision envelope (VOCap.m)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    positives = sum(1 for l in labels if l > 0)
    tp = fp = 0
    rec, prec = [], []
    for i in order:
        if labels[i] == 0:
            continue
        if labels[i] > 0:
            tp += 1
        else:
            fp += 1
        rec.append(tp / positives)
        prec.append(tp / (tp + fp))
    mrec = [0.0] + rec + [1.0]
    mpre = [0.0] + prec + [0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec))
               if mrec[i] != mrec[i - 1])


def classification_map(scores, labels):
    aps = [voc_ap(scores[:, c].tolist(), labels[:, c].tolist())
           for c in range(labels.shape[1]) if (labels[:, c] > 0).any()]
    return sum(aps) / len(aps) if aps else float("nan")


# ---- training ----

def class_scores(model, x, mean_grad):
    return PeakStimulation.apply(upsample8(model(x)), mean_grad)


def validate(model, images, labels, batch, dev):
    model.eval()
    out = []
    with torch.no_grad():
        for b in range(0, len(images), batch):
            x = torch.from_numpy(images[b:b + batch]).to(dev)
            out.append(class_scores(model, x, False).double().cpu().numpy())
    model.train()
    return classification_map(np.concatenate(out), labels)


def save_safetensors(path, state):
    """The state dict as .safetensors (prm's names are torchvision's + classifier.*, so
    `prm forward / infer / eval --weights` read it)."""
    header, blobs, offset = {}, [], 0
    for name, t in state.items():
        a = t.detach().cpu().contiguous().numpy()
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
        blob = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))
    os.replace(path + ".tmp", path)


def parse_drops(text):
    drops = [int(e) for e in text.split(",")] if text else []
    if any(e < 1 for e in drops):
        sys.exit("--lr-drops: epochs are 1-based")
    return drops


# ---- the comparison table (docs/testing.md) ----

def read_metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def comparison_table(root):
    """Markdown tables from ROOT/<set>/<impl>-<seed>/metrics.jsonl (impl: prm or torch): final
    val mAP per run, mean and spread per (set, implementation), and the training-loss curves:
    per epoch, the gap between the two implementations' mean losses against the seeds' spread
    (the larger of the two implementations' max - min over seeds at that epoch)."""
    sets = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    out = ["| set | impl | final val mAP per seed | mean | min..max | mean prm - torch |",
           "|---|---|---|---|---|---|"]
    curves = ["| set | epochs | loss epoch 1, prm / torch | loss last epoch, prm / torch | "
              "largest gap / spread (epoch) | within spread |", "|---|---|---|---|---|---|"]
    for name in sets:
        runs = {"prm": {}, "torch": {}}
        for d in sorted(os.listdir(os.path.join(root, name))):
            impl, _, seed = d.partition("-")
            path = os.path.join(root, name, d, "metrics.jsonl")
            if impl in runs and os.path.exists(path):
                runs[impl][int(seed)] = read_metrics(path)
        if not runs["prm"] or not runs["torch"]:
            continue
        means = {}
        for impl in ("prm", "torch"):
            finals = {s: m[-1]["val_map"] for s, m in sorted(runs[impl].items())}
            means[impl] = sum(finals.values()) / len(finals)
            per_seed = ", ".join(f"{v:.3f} (s{s})" for s, v in finals.items())
            gap = f"{100 * (means['prm'] - means['torch']):+.1f} points" if impl == "torch" else ""
            out.append(f"| {name} | {impl} | {per_seed} | {means[impl]:.3f} | "
                       f"{min(finals.values()):.3f}..{max(finals.values()):.3f} | {gap} |")
        epochs = min(len(m) for r in runs.values() for m in r.values())
        worst, worst_epoch, mean_loss = 0.0, 0, {}
        for e in range(epochs):
            spread = 0.0
            for impl in ("prm", "torch"):
                losses = [m[e]["loss"] for m in runs[impl].values()]
                mean_loss[impl, e] = sum(losses) / len(losses)
                spread = max(spread, max(losses) - min(losses))
            ratio = abs(mean_loss["prm", e] - mean_loss["torch", e]) / max(spread, 1e-12)
            if ratio > worst:
                worst, worst_epoch = ratio, e + 1
        last = epochs - 1
        curves.append(f"| {name} | {epochs} | {mean_loss['prm', 0]:.4f} / "
                      f"{mean_loss['torch', 0]:.4f} | {mean_loss['prm', last]:.4f} / "
                      f"{mean_loss['torch', last]:.4f} | {worst:.2f} ({worst_epoch}) | "
                      f"{'yes' if worst <= 1 else 'no'} |")
    return "\n".join(out) + "\n\n" + "\n".join(curves)


def lossless_copy(src, dst):
    """A copy of the VOC-layout set SRC in DST where every JPEGImages/*.jpg holds, under the same
    name, PNG bytes of PIL's decoding of the JPEG: both programs read images by their content, so
    prm (stb_image) and this script (PIL) then train on the very same pixels, and the JPEG
    decoders' differences drop out of the comparison. Everything else is copied as it is."""
    import shutil
    if os.path.exists(dst):
        sys.exit(f"train_torch.py: {dst} exists")
    shutil.copytree(src, dst)
    jpegs = os.path.join(dst, "JPEGImages")
    for name in sorted(os.listdir(jpegs)):
        path = os.path.join(jpegs, name)
        pixels = Image.open(path).convert("RGB")
        pixels.save(path + ".tmp", format="PNG")
        os.replace(path + ".tmp", path)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        print(comparison_table(sys.argv[2]))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "--lossless-copy":
        lossless_copy(sys.argv[2], sys.argv[3])
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="train_torch.py --table ROOT prints the comparison tables "
                                       "of ROOT/<set>/{prm,torch}-<seed>/metrics.jsonl; "
                                       "train_torch.py --lossless-copy SRC DST copies a set with "
                                       "its JPEGs stored as PNG bytes (PIL's pixels), so that both "
                                       "programs train on the same pixels.")
    p.add_argument("--data", required=True, help="VOC-layout root (prm synth --out)")
    p.add_argument("--out", default="", help="run folder for metrics.jsonl and steps.jsonl")
    p.add_argument("--train-split", default="train")
    p.add_argument("--val-split", default="val", help="'none' to skip validation")
    p.add_argument("--arch", default="resnet50", choices=sorted(LAYOUTS))
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--size", type=int, default=448)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--lr-drops", default="")
    p.add_argument("--backbone-lr-mult", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--peak-grad", choices=["official", "mean"], default="official")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rng", choices=["prm", "torch"], default="prm",
                   help="prm: replay prm's init, batch order and flips from --seed; torch: "
                        "torch's generator")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    a = p.parse_args()
    if a.size < 32 or a.batch < 1 or a.epochs < 1:
        p.error("need --size >= 32, --batch >= 1, --epochs >= 1")
    drops = parse_drops(a.lr_drops)
    torch.set_num_threads(a.threads or os.cpu_count())
    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    root = resolve_root(a.data)
    _, train_x, train_labels = load_split(root, a.train_split, a.size)
    train_y = (train_labels >= 0).astype(np.float32)  # difficult objects are positives
    val = None
    if a.val_split != "none" and os.path.exists(
            os.path.join(root, "ImageSets", "Main", a.val_split + ".txt")):
        _, val_x, val_labels = load_split(root, a.val_split, a.size)
        val = (val_x, val_labels)
    n = len(train_x)

    model = FCResNet(a.arch, num_classes=len(VOC_CLASSES), width=a.width)
    gen = torch.Generator().manual_seed(a.seed)
    if a.rng == "prm":
        init_like_prm(model, a.seed)
    else:
        init_torch(model, gen)
    model.to(dev).train()
    features = [q for name, q in model.named_parameters() if not name.startswith("classifier.")]
    head = [q for name, q in model.named_parameters() if name.startswith("classifier.")]
    opt = torch.optim.SGD([{"params": features, "mult": a.backbone_lr_mult},
                           {"params": head, "mult": 1.0}],
                          lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    mean_grad = a.peak_grad == "mean"
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        open(os.path.join(a.out, "metrics.jsonl"), "w").close()
        open(os.path.join(a.out, "steps.jsonl"), "w").close()
    step, seen, started = 0, 0, time.perf_counter()
    for epoch in range(a.epochs):
        lr = a.lr
        for d in drops:
            if epoch + 1 >= d:
                lr *= 0.1
        for g in opt.param_groups:
            g["lr"] = lr * g["mult"]
        if a.rng == "prm":
            order = prm_epoch_order(a.seed, epoch, n)
            flips = [prm_flip(a.seed, epoch, i) for i in range(n)]
        else:
            order = torch.randperm(n, generator=gen).tolist()
            flips = (torch.rand(n, generator=gen) < 0.5).tolist()
        losses = []
        for b in range(0, n, a.batch):
            idx = order[b:b + a.batch]
            x = np.stack([train_x[i][:, :, ::-1] if flips[i] else train_x[i] for i in idx])
            x = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
            y = torch.from_numpy(train_y[idx]).to(dev)
            opt.zero_grad(set_to_none=True)
            loss = F.multilabel_soft_margin_loss(class_scores(model, x, mean_grad), y)
            loss.backward()
            opt.step()
            value = loss.item()
            if not math.isfinite(value):
                sys.exit(f"the loss became {value} at epoch {epoch + 1} step {step + 1}")
            losses.append(value)
            step += 1
            seen += len(idx)
            if a.out:
                with open(os.path.join(a.out, "steps.jsonl"), "a") as f:
                    f.write(json.dumps({"epoch": epoch + 1, "step": step, "loss": value}) + "\n")
        line = {"epoch": epoch + 1, "step": step, "loss": sum(losses) / len(losses), "lr": lr,
                "images_per_s": seen / (time.perf_counter() - started)}
        if val is not None:
            line["val_map"] = validate(model, val[0], val[1], a.batch, dev)
        print(json.dumps(line), flush=True)
        if a.out:
            with open(os.path.join(a.out, "metrics.jsonl"), "a") as f:
                f.write(json.dumps(line) + "\n")
    if a.out:
        save_safetensors(os.path.join(a.out, "weights.safetensors"), model.state_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
