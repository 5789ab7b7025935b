#!/usr/bin/env python3
"""A synthetic COCO instances file of train2014's size, for timing annotation readers (docs/coco.md,
"Reading annotations"): 82,783 images, 604,907 annotations over COCO's 80 category ids, polygons of
3-44 points with 2-decimal coordinates, about 1% crowd regions with uncompressed RLE. Seeded.

    python3 tools/make_coco_sized.py ROOT/annotations/instances_train2014.json
"""
import random, sys
if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
    sys.exit(__doc__)
random.seed(1)
out = open(sys.argv[1], "w")
ids = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
out.write('{"info": {"year": 2014}, "images": [')
N, A = 82783, 604907
for i in range(N):
    out.write((',' if i else '') + '{"license": 3, "file_name": "COCO_train2014_%012d.jpg", "coco_url": "http://images.cocodataset.org/train2014/COCO_train2014_%012d.jpg", "height": 480, "width": 640, "date_captured": "2013-11-14 11:18:45", "id": %d}' % (i + 1, i + 1, i + 1))
out.write('], "licenses": [], "annotations": [')
for a in range(A):
    img = random.randrange(N) + 1
    if random.random() < 0.01:
        counts = []
        left = 480 * 640
        while left > 0:
            c = min(left, random.randrange(1, 4000))
            counts.append(c); left -= c
        seg = '{"counts": [%s], "size": [480, 640]}' % ",".join(map(str, counts))
        crowd = 1
    else:
        k = random.randrange(3, 45)
        seg = '[[%s]]' % ",".join("%.2f" % random.uniform(0, 480) for _ in range(2 * k))
        crowd = 0
    out.write((',' if a else '') + '{"segmentation": %s, "area": %.4f, "iscrowd": %d, "image_id": %d, "bbox": [%.2f, %.2f, %.2f, %.2f], "category_id": %d, "id": %d}' % (seg, random.uniform(10, 50000), crowd, img, random.uniform(0, 400), random.uniform(0, 300), random.uniform(1, 200), random.uniform(1, 200), random.choice(ids), a + 1))
out.write('], "categories": [%s]}' % ",".join('{"supercategory": "s", "id": %d, "name": "c%d"}' % (i, i) for i in ids))
