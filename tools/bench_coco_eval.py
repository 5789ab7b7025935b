#!/usr/bin/python3
"""Times COCO segmentation evaluation: pycocotools' COCOeval.evaluate() + accumulate() against
prm::coco::evaluate_segm on the same random problem, and checks that the twelve numbers agree.
Run by hand (never by CI; pycocotools is a test oracle, not a dependency):

    make USE_CUDA=0 BUILD=build                                  # builds build/libprm.a
    export PYTHONPATH=/path/to/cocoapi/PythonAPI   # the official pycocotools
    /usr/bin/python3 tools/bench_coco_eval.py --images 40137 --problem /tmp/coco_bench_40k

--problem DIR keeps the problem (DIR/instances.json and DIR/results.json in COCO's formats, and
DIR/problem.txt for the C++ side) and reuses it when it is there, since making it takes minutes.

The problem imitates COCO val2014 with a detector's output: 40,137 images of COCO's sizes, about
7.3 ground truths per image (COCO's 80 category ids, person most frequent, 1% crowd regions,
objects from a few pixels to most of the image, the annotation's area field a little off the
mask's), and N detections per image: jittered copies of the ground truths (mostly of the right
category, scored higher the closer they are) and random objects (scored low); scores have 3
decimals, so there are ties. Masks are random polygons turned into compressed RLE by pycocotools
(the results format). Both sides get the same RLE strings;
pycocotools' loadRes (areas, boxes) and the C++ side's reading of the file are not timed, the
C++ decoding of the strings is timed separately and reported. Times are wall-clock and CPU
seconds: on a machine that others share, CPU seconds compare one thread with pycocotools' one
thread fairly; wall-clock seconds show what threads add.

The C++ half is tools/bench_coco_eval.cpp, compiled here against BUILD/libprm.a.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
SIZES = [(480, 640), (640, 480), (427, 640), (640, 427), (375, 500), (500, 375), (512, 640)]
STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm',
              'ARl']


def polygon(rng, h, w):
    """A random object: an irregular ellipse of 6 to 20 vertices, 4 px to most of the image."""
    size = np.exp(rng.uniform(np.log(4), np.log(0.7 * min(h, w))))
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    n = rng.randint(6, 21)
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(0.7, 1.0, n)
    xy = np.empty(2 * n)
    xy[0::2] = cx + size * rng.uniform(0.3, 0.6) * rad * np.cos(ang)
    xy[1::2] = cy + size * rng.uniform(0.3, 0.6) * rad * np.sin(ang)
    return xy


def jittered(rng, xy):
    """A detection of the object xy: moved, scaled and its vertices shaken, a little or a lot."""
    cx, cy = xy[0::2].mean(), xy[1::2].mean()
    size = max(np.ptp(xy[0::2]), np.ptp(xy[1::2]), 1.0)
    amount = rng.choice([0.02, 0.06, 0.15, 0.4])
    out = np.empty_like(xy)
    scale = np.exp(rng.normal(0, amount))
    out[0::2] = cx + (xy[0::2] - cx) * scale + rng.normal(0, amount * size)
    out[1::2] = cy + (xy[1::2] - cy) * scale + rng.normal(0, amount * size)
    return out + rng.normal(0, amount * size * 0.2, out.shape), amount


def make_problem(args):
    rng = np.random.RandomState(args.seed)
    freq = np.ones(len(COCO_IDS))
    freq[1:] = 1 + 4 * rng.rand(len(COCO_IDS) - 1)
    freq[0] = 0.3 * freq.sum()  # person: about a quarter of the objects
    freq /= freq.sum()
    images, gts, dts = [], [], []
    for i in range(args.images):
        image_id = 100000 + 7 * i
        h, w = SIZES[rng.randint(len(SIZES))]
        images.append({'id': image_id, 'file_name': '%012d.jpg' % image_id, 'height': h,
                       'width': w})
        polys, meta = [], []  # meta: (kind, category, crowd or score)
        objects = []
        for _ in range(min(rng.poisson(args.gts_per_image), 60)):
            cat = int(rng.choice(COCO_IDS, p=freq))
            xy = polygon(rng, h, w)
            crowd = int(rng.rand() < 0.01)
            polys.append(xy)
            meta.append(('gt', cat, crowd))
            if not crowd:
                objects.append((cat, xy))
        # A detector's confusions: the image's categories and a few others.
        image_cats = sorted(set(c for c, _ in objects)) + \
            [int(c) for c in rng.choice(COCO_IDS, 3, p=freq)]
        candidates = []
        for cat, xy in objects:
            for _ in range(rng.randint(1, 6)):
                same = rng.rand() < 0.85
                dxy, amount = jittered(rng, xy)
                score = np.clip(0.95 - amount - (0 if same else 0.3) + rng.normal(0, 0.15), 0, 1)
                candidates.append((cat if same else int(rng.choice(image_cats)), dxy, score))
        rng.shuffle(candidates)
        candidates = candidates[:args.dets_per_image]
        while len(candidates) < args.dets_per_image:
            candidates.append((int(rng.choice(image_cats)), polygon(rng, h, w),
                               0.5 * rng.rand()))
        for cat, xy, score in candidates:
            polys.append(xy)
            meta.append(('dt', cat, round(float(score), 3)))
        rles = mask_utils.frPyObjects([p.round(2).tolist() for p in polys], h, w) if polys else []
        for rle, (kind, cat, extra) in zip(rles, meta):
            segm = {'size': [h, w], 'counts': rle['counts'].decode('ascii')}
            if kind == 'gt':
                area = float(mask_utils.area(rle)) * float(rng.uniform(0.92, 1.08))
                gts.append({'id': len(gts) + 1, 'image_id': image_id, 'category_id': cat,
                            'iscrowd': extra, 'area': area, 'segmentation': segm})
            else:
                dts.append({'image_id': image_id, 'category_id': cat,
                            'score': extra, 'segmentation': segm})
    return images, gts, dts


def write_problem(path, images, gts, dts):
    with open(path, 'w') as f:
        for im in images:
            f.write('I %d\n' % im['id'])
        for c in COCO_IDS:
            f.write('C %d\n' % c)
        for g in gts:
            s = g['segmentation']
            f.write('G %d %d %d %d %r %d %d %s\n' % (g['id'], g['image_id'], g['category_id'],
                                                     g['iscrowd'], g['area'], s['size'][0],
                                                     s['size'][1], s['counts']))
        for d in dts:
            s = d['segmentation']
            f.write('D %d %d %r %d %d %s\n' % (d['image_id'], d['category_id'], d['score'],
                                               s['size'][0], s['size'][1], s['counts']))


def timed(f):
    wall, cpu = time.perf_counter(), time.process_time()
    f()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_pycocotools(dataset, dts):
    gt = COCO()
    gt.dataset = dataset
    gt.createIndex()
    holder = {}
    load_s, _ = timed(lambda: holder.update(dt=gt.loadRes(dts)))
    E = COCOeval(gt, holder['dt'], 'segm')
    evaluate_s, evaluate_cpu_s = timed(E.evaluate)
    accumulate_s, accumulate_cpu_s = timed(E.accumulate)
    E.summarize()
    return {'loadres_s': load_s, 'evaluate_s': evaluate_s, 'accumulate_s': accumulate_s,
            'evaluate_cpu_s': evaluate_cpu_s, 'accumulate_cpu_s': accumulate_cpu_s,
            'stats': [float(v) for v in E.stats]}


def build_driver(build):
    lib = os.path.join(build, 'libprm.a')
    if not os.path.exists(lib):
        sys.exit('bench_coco_eval: %s not found (make USE_CUDA=0 BUILD=%s first)' % (lib, build))
    exe = os.path.join(build, 'bench_coco_eval')
    subprocess.check_call(['g++', '-std=c++17', '-O3', '-march=native', '-fopenmp', '-Isrc',
                           'tools/bench_coco_eval.cpp', lib, '-o', exe, '-lpthread'])
    return exe


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--images', type=int, default=40137)
    ap.add_argument('--dets-per-image', type=int, default=100)
    ap.add_argument('--gts-per-image', type=float, default=7.3)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--build', default='build')
    ap.add_argument('--threads', default='1,2', help='thread counts for the C++ side')
    ap.add_argument('--skip-pycocotools', action='store_true')
    ap.add_argument('--json', help='also write the results here')
    ap.add_argument('--problem', help='keep the problem in this folder, or reuse it from there')
    args = ap.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

    exe = build_driver(args.build)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.problem or tmp
        paths = [os.path.join(folder, f) for f in ('instances.json', 'results.json', 'problem.txt')]
        if all(os.path.exists(p) for p in paths):
            print('problem: reading %s' % folder, file=sys.stderr)
            with open(paths[0]) as f:
                dataset = json.load(f)
            with open(paths[1]) as f:
                dts = json.load(f)
        else:
            t = time.perf_counter()
            images, gts, dts = make_problem(args)
            dataset = {'images': images, 'annotations': gts,
                       'categories': [{'id': c, 'name': str(c)} for c in COCO_IDS]}
            print('problem made in %.0f s' % (time.perf_counter() - t), file=sys.stderr)
            os.makedirs(folder, exist_ok=True)
            for path, data in zip(paths, (dataset, dts)):
                with open(path, 'w') as f:
                    json.dump(data, f)
            write_problem(paths[2], images, gts, dts)
        print('problem: %d images, %d ground truths, %d detections'
              % (len(dataset['images']), len(dataset['annotations']), len(dts)), file=sys.stderr)
        out = subprocess.run([exe, paths[2]] + args.threads.split(','), check=True,
                             stdout=subprocess.PIPE, text=True).stdout
    cpp = [json.loads(line) for line in out.splitlines()]
    py = None if args.skip_pycocotools else run_pycocotools(dataset, dts)

    print('\n%-8s %12s %12s' % ('', 'pycocotools', 'prm'))
    for i, name in enumerate(STAT_NAMES):
        print('%-8s %12s %12.9f' % (name, '%.9f' % py['stats'][i] if py else '-',
                                    cpp[0]['stats'][i]))
    result = {'images': len(dataset['images']), 'ground_truths': len(dataset['annotations']),
              'detections': len(dts), 'prm': cpp, 'pycocotools': py}
    if py:
        diff = max(abs(a - b) for r in cpp for a, b in zip(r['stats'], py['stats']))
        result['max_abs_difference'] = diff
        py_s = py['evaluate_s'] + py['accumulate_s']
        py_cpu = py['evaluate_cpu_s'] + py['accumulate_cpu_s']
        print('\npycocotools evaluate() + accumulate(): %.1f s + %.1f s = %.1f s wall, %.1f s CPU '
              '(loadRes %.1f s, not counted)' % (py['evaluate_s'], py['accumulate_s'], py_s,
                                                 py_cpu, py['loadres_s']))
        for r in cpp:
            print('prm evaluate_segm, %d thread(s): %.2f s wall (x%.0f), %.2f s CPU (x%.0f); '
                  'decoding the strings first: %.2f s wall more'
                  % (r['threads'], r['eval_s'], py_s / r['eval_s'], r['eval_cpu_s'],
                     py_cpu / r['eval_cpu_s'], r['strings_s']))
        print('largest difference of the twelve numbers: %.3g' % diff)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    if py and result['max_abs_difference'] > 1e-6:
        sys.exit('bench_coco_eval: the numbers differ')


if __name__ == '__main__':
    main()
