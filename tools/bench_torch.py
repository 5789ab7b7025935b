#!/usr/bin/env python3
"""PyTorch side of the side-by-side benchmark (run by hand; never by CI, never a dependency).

Builds the same fully convolutional ResNet as `prm` (torchvision layout, no avgpool/fc, then a 1x1
`classifier` conv with bias) and prints JSON lines in the `prm bench` contract, with "impl":
"pytorch". Times are medians over --runs after warm-up; peak_mem_mb is the process's peak resident
memory, so run one --only per process for a clean memory figure, as `prm bench` is run.

  python3 tools/bench_torch.py --arch resnet50 --size 448 --batch 1 --only forward
"""
import argparse, json, resource, statistics, sys, time

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
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--only", choices=["forward", "train"], default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    else:
        import os
        torch.set_num_threads(os.cpu_count())
    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = FCResNet(a.arch).to(dev)
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
    target = (torch.rand(a.batch, 20, device=dev) > 0.7).float()
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)

    def peak_mb():
        if dev.type == "cuda":
            return torch.cuda.max_memory_allocated() / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def emit(bench, times):
        print(json.dumps({"bench": bench, "impl": "pytorch", "arch": a.arch, "size": a.size,
                          "batch": a.batch, "device": a.device,
                          "median_s": statistics.median(times), "min_s": min(times),
                          "runs": len(times), "peak_mem_mb": round(peak_mb(), 1),
                          "threads": torch.get_num_threads()}), flush=True)

    if a.only in (None, "forward"):
        model.eval()
        with torch.no_grad():
            emit("forward", timed(lambda: model(x), a.runs, a.warmup, sync))
    if a.only in (None, "train"):
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            crm = model(x)
            # Class scores: spatial mean of the CRMs (prm's bench uses peak stimulation once it exists).
            loss = F.multilabel_soft_margin_loss(crm.mean(dim=(2, 3)), target)
            loss.backward()
            opt.step()

        emit("train_step", timed(step, a.runs, a.warmup, sync))


if __name__ == "__main__":
    sys.exit(main())
