"""Sweep cases: SSD's Normalize, Permute, PriorBox (clip, flip, every size form) and
DetectionOutput (code types, shared or per-class locations, top_k / keep_top_k, fewer boxes
than keep_top_k, no box at all, a batch of two)."""
import itertools

from . import case, layer, make_net

# Normalize: over channels per position or over the whole sample; one scale or one per channel
for across, shared, eps in itertools.product(("true", "false"), ("true", "false"), ("", "eps: 0.5")):
    case(f"Normalize-across_{across}-shared_{shared}{'-eps0.5' if eps else ''}",
         make_net(layer("norm", "Normalize", param=f"norm_param {{ across_spatial: {across} "
                        f"channel_shared: {shared} {eps} }}"), (("data", (2, 5, 4, 6)),)))

# Permute: SSD's NCHW -> NHWC, a partial order (the rest appended), a 2-D swap, the identity
for order in ((0, 2, 3, 1), (0, 3, 1, 2), (2,), (0, 1, 2, 3)):
    case(f"Permute-{''.join(map(str, order))}",
         make_net(layer("perm", "Permute", param="permute_param { " + " ".join(f"order: {o}" for o in order) + " }"),
                  (("data", (2, 3, 4, 5)),)))
case("Permute-2d-10", make_net(layer("perm", "Permute", param="permute_param { order: 1 order: 0 }"),
                               (("data", (3, 7)),)))

FEAT_IMG = (("feat", (1, 2, 3, 4)), ("img", (1, 3, 30, 41)))
PRIORS = {
    # SSD300's first head: one min/max pair, ratio 2 flipped, explicit step and offset
    "ssd300": "min_size: 30.0 max_size: 60.0 aspect_ratio: 2 flip: true clip: false variance: 0.1 variance: 0.1 "
              "variance: 0.2 variance: 0.2 step: 8 offset: 0.5",
    "clip-flip": "min_size: 12 aspect_ratio: 2 aspect_ratio: 3 flip: true clip: true variance: 0.1",
    "clip-noflip": "min_size: 20 max_size: 35 aspect_ratio: 2 flip: false clip: true",
    # 0.5 is already there once 2 is flipped: Caffe drops the duplicate
    "dedup": "min_size: 10 aspect_ratio: 2 aspect_ratio: 0.5 aspect_ratio: 1 flip: true",
    # SSD's Forward keeps sizes in an int: 21.7 acts as 21
    "fractional": "min_size: 21.7 max_size: 45.2 min_size: 8 max_size: 12.9 aspect_ratio: 3",
    "img_size-step_hw": "min_size: 15 img_size: 50 step_h: 9 step_w: 11 offset: 0",
    "img_hw": "min_size: 15 max_size: 25 img_h: 40 img_w: 60 aspect_ratio: 2",
    "default-step": "min_size: 9 offset: 0.25",
}
for pid, param in PRIORS.items():
    case(f"PriorBox-{pid}", make_net(layer("pb", "PriorBox", bottoms=("feat", "img"),
                                           param=f"prior_box_param {{ {param} }}"), FEAT_IMG))
case("PriorBox-one-bottom", make_net(layer("pb", "PriorBox", bottoms=("feat",),
                                           param="prior_box_param { min_size: 10 img_size: 30 clip: true }"),
                                     FEAT_IMG[:1]))


def detection_net(param, classes=4, share=True, batch=1):
    """PriorBox on a 3x3 map (4 priors a cell: 36), softmax scores, random location offsets."""
    priors = 36
    loc_classes = 1 if share else classes
    text = layer("pb", "PriorBox", bottoms=("feat", "img"), tops=("prior",),
                 param="prior_box_param { min_size: 10 max_size: 20 aspect_ratio: 2 flip: true "
                       "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 }")
    text += layer("conf_r", "Reshape", bottoms=("conf_raw",), param=f"reshape_param {{ shape {{ dim: 0 dim: -1 "
                                                                    f"dim: {classes} }} }}")
    text += layer("conf_p", "Softmax", bottoms=("conf_r",), param="softmax_param { axis: 2 }")
    text += layer("conf", "Flatten", bottoms=("conf_p",))
    text += layer("det", "DetectionOutput", bottoms=("loc", "conf", "prior"),
                  param=f"detection_output_param {{ num_classes: {classes} share_location: {str(share).lower()} "
                        f"{param} }}")
    return make_net(text, (("feat", (batch, 2, 3, 3)), ("img", (batch, 3, 30, 30)),
                           ("loc", (batch, priors * loc_classes * 4)), ("conf_raw", (batch, priors * classes))))


NMS = "nms_param { nms_threshold: 0.45 top_k: 10 }"
DETECTIONS = {
    "center-topk-keep": (f"{NMS} code_type: CENTER_SIZE keep_top_k: 8 confidence_threshold: 0.2", {}),
    # keep_top_k above what survives: the rest of the block is padding
    "fewer-than-keep": (f"{NMS} code_type: CENTER_SIZE keep_top_k: 60 confidence_threshold: 0.45", {}),
    # nothing above the threshold: Caffe's one "no detection" row per image
    "none": ("nms_param { nms_threshold: 0.45 } code_type: CENTER_SIZE keep_top_k: 5 confidence_threshold: 0.999",
             {}),
    "corner-encoded": (f"{NMS} code_type: CORNER variance_encoded_in_target: true keep_top_k: 12 "
                       f"confidence_threshold: 0.1", {}),
    "corner-variance": ("nms_param { nms_threshold: 0.3 top_k: 12 } code_type: CORNER keep_top_k: 20", {}),
    "corner_size": (f"{NMS} code_type: CORNER_SIZE confidence_threshold: 0.2", {}),
    "per-class-loc": (f"{NMS} code_type: CENTER_SIZE keep_top_k: 15 confidence_threshold: 0.15", {"share": False}),
    "no-background": (f"{NMS} background_label_id: -1 code_type: CENTER_SIZE keep_top_k: 9 "
                      f"confidence_threshold: 0.2", {}),
    "background-2": (f"{NMS} background_label_id: 2 code_type: CENTER_SIZE confidence_threshold: 0.2", {}),
    "all-priors-no-keep": ("nms_param { nms_threshold: 0.5 } code_type: CENTER_SIZE confidence_threshold: 0.3", {}),
    "no-threshold": ("nms_param { nms_threshold: 0.6 top_k: 5 } code_type: CENTER_SIZE keep_top_k: 7", {}),
    "batch2": (f"{NMS} code_type: CENTER_SIZE keep_top_k: 10 confidence_threshold: 0.25", {"batch": 2}),
    "batch2-per-class": (f"{NMS} code_type: CENTER_SIZE keep_top_k: 10 confidence_threshold: 0.25",
                         {"batch": 2, "share": False}),
}
for did, (param, kw) in DETECTIONS.items():
    case(f"DetectionOutput-{did}", detection_net(param, **kw))
