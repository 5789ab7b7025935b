#!/usr/bin/python3
"""Where the demo's instance quality is lost, stage by stage (issue 13).

Reads what `prm eval --weights ... --dump DIR` (or `prm infer --dump DIR`) wrote per image (the
proposals, PRMs and step-6 scores at the extraction size E, the peaks and the instances with the
proposal each chose) and the ground truth of a VOC-layout folder (SegmentationObject and
SegmentationClass PNGs, void 255), and prints:

  (a) proposals: per ground-truth instance, the best IoU of any proposal (all of them, and only
      those extraction considers: the first 100, then the size filter). Recall at 0.5 of the
      considered ones bounds mAP^r@0.5 from above.
  (b) PRMs: peaks of classes absent from the image; for the others the *target* instance (the
      one of the peak's class holding most of the PRM's mass), the share of the PRM's mass inside
      it (vs its share of the image's area), inside all objects of its class, inside any object.
  (c) choice: per peak with a target, the IoU of the proposal it chose with the target vs the
      best IoU any considered proposal reaches, and where the best one ranks by score; the
      oracle that gives each target the best proposal of its peaks.
  (d) final instances: for each ground-truth instance, the best IoU of a predicted instance of
      its class (this is the eval's ABO computed at E and mapped back).

IoUs are computed at the original image size, proposals brought back by nearest neighbour as
`prm infer` does, void pixels left out (as `prm eval`). Analysis only: needs numpy and PIL
(/usr/bin/python3 on this machine), not a dependency of the product.

usage: tools/demo_diagnose.py --data demo/data --dump DIR [--json OUT.json]
"""
import argparse
import glob
import json
import os
import sys

import numpy as np
from PIL import Image


def load_npy(path):
    return np.load(path, allow_pickle=False)


def resize_nearest(masks, H, W):
    """[N, h, w] -> [N, H, W], source index floor((dst + 0.5) * in / out) (prm's rule)."""
    h, w = masks.shape[-2:]
    sy = np.minimum(h - 1, ((np.arange(H) + 0.5) * h / H).astype(np.int64))
    sx = np.minimum(w - 1, ((np.arange(W) + 0.5) * w / W).astype(np.int64))
    return masks[..., sy[:, None], sx[None, :]]


def peak_to_image(up, up_size, image_size, factor=8.0):
    """The image pixel of a peak on the x8 upsampled CRM grid (prm/infer.cpp's mapping)."""
    own = max(1.0, round(up_size / factor))
    cell = up * (own - 1) / (up_size - 1) if up_size > 1 else 0.0
    return min(max((cell + 0.5) * image_size / own - 0.5, 0.0), image_size - 1.0)


def ious(masks, gt, valid):
    """IoU of each of masks [N, H, W] (bool) with gt [H, W] (bool), on valid pixels only."""
    m = masks & valid
    g = gt & valid
    inter = (m & g).reshape(len(m), -1).sum(1)
    union = (m | g).reshape(len(m), -1).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--split", default="val",
                    help="ImageSets/Segmentation/<split>.txt: images missing from the dump had no "
                         "peak (no class score >= the class threshold); their instances are counted")
    ap.add_argument("--json", help="write the numbers here too")
    args = ap.parse_args()

    gt_best_all, gt_best_considered, gt_best_pred = [], [], []
    peaks_total = peaks_on_own = peaks_absent_class = 0
    area_own = []
    mass_own, mass_class, mass_any, mass_any_void = [], [], [], []
    chosen_iou, best_iou_for_peak, best_rank = [], [], []
    chosen_area_ratio = []
    proposals_count, considered_count = [], []
    oracle_gt = []  # per gt: best IoU of a proposal chosen by the oracle from its peaks
    files = sorted(glob.glob(os.path.join(args.dump, "*.json")))
    if not files:
        sys.exit(f"{args.dump}: no per-image JSON files")
    images_without_dump = gt_without_dump = 0
    dumped = {os.path.basename(f)[:-5] for f in files}
    split = os.path.join(args.data, "ImageSets", "Segmentation", args.split + ".txt")
    for iid in open(split).read().split():
        if iid not in dumped:
            obj = np.array(Image.open(os.path.join(args.data, "SegmentationObject", iid + ".png")))
            images_without_dump += 1
            gt_without_dump += len([v for v in np.unique(obj) if v not in (0, 255)])
    for f in files:
        d = json.load(open(f))
        iid, W, H, E = d["image"], d["width"], d["height"], d["extraction_size"]
        obj = np.array(Image.open(os.path.join(args.data, "SegmentationObject", iid + ".png")))
        cls = np.array(Image.open(os.path.join(args.data, "SegmentationClass", iid + ".png")))
        valid = obj != 255
        ids = [int(v) for v in np.unique(obj) if v not in (0, 255)]
        gts = [obj == i for i in ids]
        gt_cls = []
        for g in gts:
            v = cls[g]
            gt_cls.append(int(np.bincount(v[v != 255]).argmax()) - 1)
        base = os.path.join(args.dump, iid)
        props_e = load_npy(base + "_proposals.npy").astype(bool)
        prms = load_npy(base + "_prms.npy")
        scores = load_npy(base + "_scores.npy")
        props = resize_nearest(props_e, H, W)
        P = len(props)
        # extraction's limit and size filter, as it applied them: -1e300 marks the others
        considered = scores[0] > -1e299
        proposals_count.append(P)
        considered_count.append(int(considered.sum()))
        # (a) proposal recall
        gt_iou = [ious(props, g, valid) for g in gts]  # per gt, [P]
        for gi in gt_iou:
            gt_best_all.append(float(gi.max()) if P else 0.0)
            gt_best_considered.append(float(gi[considered].max()) if considered.any() else 0.0)
        # (d) final instances: best IoU of a predicted mask of the gt's class
        inst = d["instances"]
        for g, c in zip(gts, gt_cls):
            best = 0.0
            for it in inst:
                if it["class"] != c:
                    continue
                m = props[it["proposal"]][None]
                best = max(best, float(ious(m, g, valid)[0]))
            gt_best_pred.append(best)
        # (b) PRM mass, (c) choice
        gts_e = [resize_nearest(g[None].astype(np.uint8), E, E)[0].astype(bool) for g in gts]
        # objects with the void band VOC draws along their boundaries (PRMs light outlines)
        objects_and_void = resize_nearest((obj != 0)[None].astype(np.uint8), E, E)[0].astype(bool)
        oracle = [0.0] * len(gts)
        # the proposal each peak chose before NMS: the argmax of its scores row
        for k, (c, py, px, value) in enumerate(d["peaks"]):
            peaks_total += 1
            prm = prms[k].astype(np.float64)
            total = prm.sum()
            mine = [gi for gi, gc in enumerate(gt_cls) if gc == c]
            if total <= 0:
                continue
            if not mine:
                peaks_absent_class += 1
                continue
            y = int(round(peak_to_image(py, d["grid_height"], H)))
            x = int(round(peak_to_image(px, d["grid_width"], W)))
            label = obj[y, x]
            if label not in (0, 255) and gt_cls[ids.index(label)] == c:
                peaks_on_own += 1
            anyobj = np.zeros((E, E), bool)
            for g in gts_e:
                anyobj |= g
            # the peak's target: the instance of its class that holds most of its PRM's mass
            masses = [prm[gts_e[gi]].sum() / total for gi in mine]
            own = mine[int(np.argmax(masses))]
            mass_own.append(max(masses))
            mass_class.append(sum(masses))
            mass_any.append(prm[anyobj].sum() / total)
            mass_any_void.append(prm[objects_and_void].sum() / total)
            area_own.append(gts_e[own].sum() / (E * E))
            row = scores[k]
            pick = int(np.argmax(row))
            iou_own = gt_iou[own]
            chosen_iou.append(float(iou_own[pick]))
            cand = np.where(considered)[0]
            best = int(cand[np.argmax(iou_own[cand])])
            best_iou_for_peak.append(float(iou_own[best]))
            order = np.argsort(-row[cand], kind="stable")
            best_rank.append(int(np.where(cand[order] == best)[0][0]) + 1)
            chosen_area_ratio.append(float(props[pick].sum() / max(1, gts[own].sum())))
            oracle[own] = max(oracle[own], float(iou_own[best]))
        oracle_gt.extend(oracle)

    def stats(name, v, fmt="{:.3f}"):
        v = np.asarray(v, dtype=np.float64)
        if len(v) == 0:
            return f"{name}: none"
        return (f"{name}: n={len(v)} mean " + fmt.format(v.mean()) + " median " +
                fmt.format(np.median(v)))

    out = {}
    a_all, a_con = np.array(gt_best_all), np.array(gt_best_considered)
    out["gt_instances"] = len(a_all)
    out["proposals_per_image"] = float(np.mean(proposals_count)) if proposals_count else 0
    out["considered_per_image"] = float(np.mean(considered_count)) if considered_count else 0
    out["a_mabo_all"] = float(a_all.mean())
    out["a_mabo_considered"] = float(a_con.mean())
    for t in (0.25, 0.5, 0.75):
        out[f"a_recall_all@{t}"] = float((a_all >= t).mean())
        out[f"a_recall_considered@{t}"] = float((a_con >= t).mean())
    out["b_peaks"] = peaks_total
    out["b_peaks_of_absent_classes"] = peaks_absent_class
    out["b_peaks_on_an_instance_of_their_class"] = peaks_on_own
    out["b_target_area_fraction"] = float(np.mean(area_own)) if area_own else 0
    out["b_mass_in_own_instance"] = float(np.mean(mass_own)) if mass_own else 0
    out["b_mass_in_class_objects"] = float(np.mean(mass_class)) if mass_class else 0
    out["b_mass_in_any_object"] = float(np.mean(mass_any)) if mass_any else 0
    out["b_mass_in_objects_and_void_band"] = float(np.mean(mass_any_void)) if mass_any_void else 0
    out["c_chosen_iou"] = float(np.mean(chosen_iou)) if chosen_iou else 0
    out["c_best_considered_iou"] = float(np.mean(best_iou_for_peak)) if best_iou_for_peak else 0
    out["c_chosen_is_best"] = float(np.mean(np.array(chosen_iou) >= np.array(best_iou_for_peak) - 1e-9)) if chosen_iou else 0
    out["c_median_rank_of_best"] = float(np.median(best_rank)) if best_rank else 0
    out["c_median_chosen_area_over_gt_area"] = float(np.median(chosen_area_ratio)) if chosen_area_ratio else 0
    out["c_oracle_abo"] = float(np.mean(oracle_gt)) if oracle_gt else 0
    out["c_oracle_recall@0.5"] = float((np.array(oracle_gt) >= 0.5).mean()) if oracle_gt else 0
    out["d_abo_final"] = float(np.mean(gt_best_pred))
    out["d_recall_final@0.5"] = float((np.array(gt_best_pred) >= 0.5).mean())
    out["images_without_peaks"] = images_without_dump
    out["gt_instances_in_images_without_peaks"] = gt_without_dump

    print(f"{len(files)} images with peaks, {out['gt_instances']} ground-truth instances in them; "
          f"{images_without_dump} images without peaks ({gt_without_dump} instances, all missed)")
    print(f"(a) proposals per image {out['proposals_per_image']:.1f}, considered "
          f"{out['considered_per_image']:.1f}")
    print(f"    best IoU per gt instance, all proposals:        MABO {out['a_mabo_all']:.3f}  "
          f"recall@.25/.5/.75 {out['a_recall_all@0.25']:.3f} {out['a_recall_all@0.5']:.3f} "
          f"{out['a_recall_all@0.75']:.3f}")
    print(f"    best IoU per gt instance, considered proposals: MABO {out['a_mabo_considered']:.3f}  "
          f"recall@.25/.5/.75 {out['a_recall_considered@0.25']:.3f} "
          f"{out['a_recall_considered@0.5']:.3f} {out['a_recall_considered@0.75']:.3f}")
    print(f"(b) peaks {peaks_total}: of classes absent from the image {peaks_absent_class}; "
          f"the rest lie on an instance of their class for {peaks_on_own}")
    print(f"    peaks of present classes: PRM mass inside the target instance (the one of its class "
          f"with most mass) {out['b_mass_in_own_instance']:.3f} (its area: "
          f"{out['b_target_area_fraction']:.3f} of the image), "
          f"inside objects of its class {out['b_mass_in_class_objects']:.3f}, "
          f"inside any object {out['b_mass_in_any_object']:.3f} (with the void band along "
          f"object boundaries {out['b_mass_in_objects_and_void_band']:.3f})")
    print(f"(c) per peak of a present class, with its target: IoU of the chosen proposal {out['c_chosen_iou']:.3f} vs the "
          f"best considered {out['c_best_considered_iou']:.3f}; chosen is best "
          f"{out['c_chosen_is_best']:.3f}; median score rank of the best "
          f"{out['c_median_rank_of_best']:.0f}; median chosen area / gt area "
          f"{out['c_median_chosen_area_over_gt_area']:.2f}")
    print(f"    oracle (each peak takes its instance's best proposal): ABO {out['c_oracle_abo']:.3f}, "
          f"recall@0.5 {out['c_oracle_recall@0.5']:.3f}")
    print(f"(d) final instances (images with peaks): ABO {out['d_abo_final']:.3f}, recall@0.5 {out['d_recall_final@0.5']:.3f}")
    if args.json:
        json.dump(out, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
