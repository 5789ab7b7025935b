#!/usr/bin/env python3
"""PyTorch side of the side-by-side benchmark (run by hand; never by CI, never a dependency).

Builds the same fully convolutional ResNet as `prm` (torchvision layout, no avgpool/fc, then a 1x1
`classifier` conv with bias) and prints JSON lines in the `prm bench` contract (apps/cmd_bench.cpp),
with "impl": "torch". Times are medians over --runs after warm-up; peak_mem_mb is the peak device
memory allocated on CUDA (reset before each measurement) and the process's peak resident memory on
CPU, so run one --only per process for a clean CPU figure, as `prm bench` is run.

Rows (same names and fields as prm's):
  forward        eval mode, no graph
  train_step     forward, class scores by the official PeakStimulation (median filter) on the
                 CRMs upsampled x8 (bilinear, align_corners), multilabel soft-margin loss,
                 backward, SGD step; "peak_grad": official (dM = peak_map * ds) or mean (/ n_c)
  prm_forward    one 1x3xSxS image: forward with graph (every conv carrying the excitation rule),
                 upsampling, peak finding, the first --peaks kept peaks (thresholds -inf)
  prm_per_peak   the official loop: one backward per peak with retain_graph, then the PRMs
  prm_batched_torch  PyTorch's own batched gradients: torch.autograd.grad(is_grads_batched=True)
                 with K one-hot seeds (legacy vmap over the backward; ops without a batching rule
                 fall back to a loop, reported in "note"); an "error" field instead of times
                 when this PyTorch cannot do it
The forward is redone before each PRM run and timed apart, so the PRM back-propagation rows time
the back-propagation (and the PRMs: clamp of the RGB sum, normalised) alone.

  python3 tools/bench_torch.py --arch resnet50 --size 448 --batch 1 --only forward
  python3 tools/bench_torch.py --arch resnet50 --size 448 --only prm --peaks 16 --device cuda
"""
import argparse, copy, json, os, re, resource, statistics, sys, time, warnings

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + identity)


LAYOUTS = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet34": (BasicBlock, [3, 4, 6, 3]),
           "resnet50": (Bottleneck, [3, 4, 6, 3]), "resnet101": (Bottleneck, [3, 4, 23, 3])}


class FCResNet(nn.Module):
    def __init__(self, arch, num_classes=20, width=64):
        super().__init__()
        block, layers = LAYOUTS[arch]
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make(block, width, layers[0], 1)
        self.layer2 = self._make(block, width * 2, layers[1], 2)
        self.layer3 = self._make(block, width * 4, layers[2], 2)
        self.layer4 = self._make(block, width * 8, layers[3], 2)
        self.classifier = nn.Conv2d(width * 8 * block.expansion, num_classes, 1, bias=True)

    def _make(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.classifier(x)



# ---- Peak stimulation and excitation backprop: the logic of tools/fixtures/make_prm_fixtures.py
# (itself the official code's), copied so this file stays standalone, with the element indices
# made on the maps' device and the excitation backward written with conv_transpose2d (the same
# numbers as torch.nn.grad.conv2d_input, which cannot take vmap's batched gradients).

def peak_map_of(crm, win=3):
    """Kept peaks of [N, C, H, W] maps: window maxima (max_pool2d's first-index argmax on the
    -inf-padded maps) at or above the per-(image, class) median (torch.median, lower middle)."""
    offset = (win - 1) // 2
    padded = F.pad(crm, (offset, offset, offset, offset), value=float("-inf"))
    h, w = padded.shape[2:]
    element = torch.arange(0, h * w, device=crm.device).view(1, 1, h, w)
    element = element[:, :, offset:-offset, offset:-offset]
    _, indices = F.max_pool2d(padded, kernel_size=win, stride=1, return_indices=True)
    median, _ = torch.median(crm.flatten(2), dim=2)
    return (indices == element) & (crm >= median.view(crm.shape[0], crm.shape[1], 1, 1))


class PeakStimulation(torch.autograd.Function):
    """The official PeakStimulation (return_aggregation, median filter). Its forward also returns
    torch.nonzero(peak_map); training does not use that list (prm's op does not make it), so it
    is left out here. Backward: official = peak_map * ds; mean = that / n_c (the true gradient)."""

    @staticmethod
    def forward(ctx, crm, mean_grad):
        n, c = crm.shape[:2]
        pm = peak_map_of(crm).to(crm.dtype)
        count = pm.view(n, c, -1).sum(2)
        ctx.save_for_backward(pm, count)
        ctx.mean_grad = mean_grad
        return (crm * pm).view(n, c, -1).sum(2) / count

    @staticmethod
    def backward(ctx, grad_output):
        pm, count = ctx.saved_tensors
        g = grad_output / count if ctx.mean_grad else grad_output
        return pm * g.view(g.shape[0], g.shape[1], 1, 1), None


class ExcitationConv(torch.autograd.Function):
    """conv2d forward; backward by the excitation-backprop rule (docs/prm.md step 5): Û = U - min U,
    W+ = max(W, 0), Z = conv(Û, W+), grad_U = Û * conv_transpose(G / (|Z| + 1e-10), W+) with the
    quotient 0 where Z < 1e-10. No gradient for the weights (they are frozen)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dilation)
        return F.conv2d(x, weight, bias, stride, padding, dilation)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.conf
        x_hat = x - x.min()
        w_plus = weight.clamp(min=0)
        z = F.conv2d(x_hat, w_plus, None, stride, padding, dilation)
        # G / (|Z| + 1e-10), 0 where Z < 1e-10 (a mask product rather than torch.where: the same
        # numbers for finite G, and legacy vmap has a batching rule for it)
        q = g / (z.abs() + 1e-10) * (z >= 1e-10).to(g.dtype)
        k = w_plus.shape[2:]
        out_pad = [x.shape[2 + d] - ((z.shape[2 + d] - 1) * stride[d] - 2 * padding[d] +
                                     dilation[d] * (k[d] - 1) + 1) for d in range(2)]
        spread = F.conv_transpose2d(q, w_plus, None, stride, padding, out_pad, 1, dilation)
        return x_hat * spread, None, None, None, None, None


def patch_convs(model):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            def forward(inp, m=m):
                return ExcitationConv.apply(inp, m.weight, m.bias, m.stride, m.padding, m.dilation)
            m.forward = forward


def upsample8(crm):
    return F.interpolate(crm, scale_factor=8, mode="bilinear", align_corners=True)


def peak_forward(model, image, max_peaks, peak_threshold=float("-inf"),
                 class_threshold=float("-inf")):
    """Forward with graph of one image, peaks of the upsampled CRMs in torch.nonzero order
    (class, y, x); the first max_peaks with s_c >= class_threshold and M > peak_threshold."""
    x = image.detach().requires_grad_(True)
    crm = upsample8(model(x))
    with torch.no_grad():
        m = crm.detach()
        pm = peak_map_of(m)
        pmf = pm.to(m.dtype)
        scores = (m * pmf).flatten(2).sum(2) / pmf.flatten(2).sum(2)
        used = pm & (scores[:, :, None, None] >= class_threshold) & (m > peak_threshold)
        peaks = torch.nonzero(used)[:max_peaks]
    return x, crm, peaks


def one_hot_seeds(crm, peaks):
    seeds = torch.zeros((len(peaks),) + tuple(crm.shape), dtype=crm.dtype, device=crm.device)
    seeds[torch.arange(len(peaks), device=crm.device), peaks[:, 0], peaks[:, 1], peaks[:, 2],
          peaks[:, 3]] = 1
    return seeds


def prms_of(grads):
    """[K, 3, H, W] input gradients -> [K, H, W] PRMs: clamp(sum over RGB, 0), sum 1."""
    maps = grads.sum(1).clamp(min=0)
    total = maps.flatten(1).sum(1)
    return maps / torch.where(total > 0, total, torch.ones_like(total))[:, None, None]


def backprop_per_peak(x, crm, peaks):
    seeds = one_hot_seeds(crm, peaks)
    maps = []
    for k in range(len(peaks)):
        (g,) = torch.autograd.grad(crm, x, seeds[k], retain_graph=k + 1 < len(peaks))
        maps.append(prms_of(g))
    return torch.cat(maps)


def backprop_batched_torch(x, crm, peaks):
    (g,) = torch.autograd.grad(crm, x, one_hot_seeds(crm, peaks), is_grads_batched=True)
    return prms_of(g.squeeze(1))  # [K, 1, 3, H, W]


def timed(fn, runs, warmup, sync):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet50", choices=sorted(LAYOUTS))
    p.add_argument("--size", type=int, default=448)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--width", type=int, default=64, help="stem width (64 for the real networks)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--only", choices=["forward", "train", "prm"], default=None)
    p.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32",
                   help="fp32: TF32 off; tf32: TF32 allowed in cuBLAS and cuDNN; bf16: autocast "
                        "to bfloat16 with channels_last (PyTorch's AMP), forward and train rows")
    p.add_argument("--peak-grad", choices=["official", "mean"], default="official",
                   help="class-score gradient in the training step")
    p.add_argument("--peaks", type=int, default=16,
                   help="PRM rows: peaks back-propagated (K, the first K kept peaks)")
    a = p.parse_args()
    if a.size < 32 or a.batch < 1 or a.runs < 1 or a.warmup < 0 or a.peaks < 1:
        p.error("--size must be >= 32, --batch, --runs and --peaks >= 1, --warmup >= 0")
    torch.set_num_threads(a.threads or os.cpu_count())
    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.benchmark = True
    amp = a.precision == "bf16"
    torch.manual_seed(0)
    model = FCResNet(a.arch, width=a.width).to(dev)
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
    if amp:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)

    def autocast():
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp)
    target = (torch.rand(a.batch, 20, device=dev) > 0.7).float()
    cuda = dev.type == "cuda"
    sync = (lambda: torch.cuda.synchronize()) if cuda else (lambda: None)

    def reset_peak():
        if cuda:
            torch.cuda.reset_peak_memory_stats()

    def peak_mb():
        if cuda:
            return torch.cuda.max_memory_allocated() / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def emit(bench, times, images, **extra):
        row = {"bench": bench, "impl": "torch", "arch": a.arch, "size": a.size, "batch": images,
               "device": a.device, "median_s": None, "min_s": None, "runs": 0,
               "peak_mem_mb": round(peak_mb(), 1), "images_per_s": None,
               "threads": torch.get_num_threads(), "precision": a.precision}
        if times:
            med = statistics.median(times)
            row.update(median_s=med, min_s=min(times), runs=len(times),
                       images_per_s=round(images / med, 3))
        row.update(extra)
        print(json.dumps(row), flush=True)

    if a.only in (None, "forward"):
        model.eval()
        reset_peak()
        with torch.no_grad(), autocast():
            emit("forward", timed(lambda: model(x), a.runs, a.warmup, sync), a.batch)
    if a.only in (None, "train"):
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        mean_grad = a.peak_grad == "mean"

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast():
                crm = model(x)
            # peak stimulation and the loss in float32, as prm's bf16 mode would
            scores = PeakStimulation.apply(upsample8(crm.float()), mean_grad)
            loss = F.multilabel_soft_margin_loss(scores, target)
            loss.backward()
            opt.step()

        reset_peak()
        emit("train_step", timed(step, a.runs, a.warmup, sync), a.batch, peak_grad=a.peak_grad)
    if a.only in (None, "prm"):
        bench_prm(a, model, dev, sync, reset_peak, emit)


def bench_prm(a, model, dev, sync, reset_peak, emit):
    net = copy.deepcopy(model).eval()
    for q in net.parameters():
        q.requires_grad_(False)
    patch_convs(net)
    gen = torch.Generator().manual_seed(1)
    image = torch.randn(1, 3, a.size, a.size, generator=gen).to(dev)

    def measure(backprop):
        """Forward times, back-propagation times and K; the forward is redone before each run."""
        forward_s, backprop_s, K = [], [], 0
        for i in range(a.warmup + a.runs):
            sync()
            t0 = time.perf_counter()
            x, crm, peaks = peak_forward(net, image, a.peaks)
            sync()
            t1 = time.perf_counter()
            backprop(x, crm, peaks)
            sync()
            t2 = time.perf_counter()
            K = len(peaks)
            del x, crm, peaks
            if i >= a.warmup:
                forward_s.append(t1 - t0)
                backprop_s.append(t2 - t1)
        return forward_s, backprop_s, K

    reset_peak()
    forward_s, per_peak_s, K = measure(backprop_per_peak)
    emit("prm_forward", forward_s, 1, peaks=K)
    emit("prm_per_peak", per_peak_s, 1, peaks=K)
    reset_peak()
    try:
        # Legacy vmap hides its per-op fallback warnings unless asked; they say which ops of the
        # backward ran as a loop over the K gradients instead of one batched call.
        show = getattr(torch._C, "_debug_only_display_vmap_fallback_warnings", None)
        if show:
            show(True)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _, batched_s, K = measure(backprop_batched_torch)
        finally:
            if show:
                show(False)
        fallbacks = sorted({m.group(1) for w in caught
                            for m in [re.search(r"batching rule for (\S+?)\.? ", str(w.message))]
                            if m})
        extra = {"vmap_fallback_ops": fallbacks} if fallbacks else {}
        emit("prm_batched_torch", batched_s, 1, peaks=K, **extra)
    except Exception as e:  # this PyTorch cannot vmap the backward (custom Function, version)
        emit("prm_batched_torch", [], 1, peaks=K, torch_version=torch.__version__,
             error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300])


if __name__ == "__main__":
    sys.exit(main())
