"""Sweep cases: ROIPooling (ROIs partly or wholly outside the map, malformed ROIs, several
scales and pooled sizes), PSROIPooling (one and two images) and py-faster-rcnn's proposal
layer (anchor scales, the min-size filter, the pre/post-NMS cut, the optional scores top,
proposals feeding an ROIPooling).

Inputs are standard normal (times `in_scale`, plus `in_shift`), so the ROI table and
im_info are built inside each net: a Power layer with scale 0 turns a column into a constant
(the batch index, the image height/width/scale), a Concat puts the table together.
"""
from . import case, layer, make_net


def constant(name, bottom, value):
    return layer(name, "Power", bottoms=(bottom,), param=f"power_param {{ power: 1 scale: 0 shift: {value} }}")


def roi_table(rois, images=1, prefix=""):
    """Layers turning the (rois, 5) input `raw` into a ROI table whose batch indices are 0
    (or 0 for the first half and 1 for the second with two images)."""
    text = layer(f"{prefix}split", "Slice", bottoms=("raw",), tops=("raw_b", "raw_xy"),
                 param="slice_param { axis: 1 slice_point: 1 }")
    if images == 1:
        text += constant(f"{prefix}b0", "raw_b", 0)
        return text + layer(f"{prefix}rois", "Concat", bottoms=(f"{prefix}b0", "raw_xy"), tops=("rois",),
                            param="concat_param { axis: 1 }")
    half = rois // 2
    text += layer(f"{prefix}halves", "Slice", bottoms=("raw_b",), tops=("b_first", "b_second"),
                  param=f"slice_param {{ axis: 0 slice_point: {half} }}")
    text += constant("b0", "b_first", 0) + constant("b1", "b_second", 1)
    text += layer("bcat", "Concat", bottoms=("b0", "b1"), param="concat_param { axis: 0 }")
    return text + layer(f"{prefix}rois", "Concat", bottoms=("bcat", "raw_xy"), tops=("rois",),
                        param="concat_param { axis: 1 }")


# ROIPooling: coordinates N(20, 40) on an image 8x the map (scale 0.125) or smaller: ROIs partly
# or wholly outside the map, x2 < x1 (forced to one cell), bins that clip to nothing
for (ph, pw), scale in (((2, 3), 0.125), ((3, 3), 0.25), ((1, 1), 0.0625), ((4, 2), 1.0)):
    text = roi_table(9) + layer("pool", "ROIPooling", bottoms=("data", "rois"),
                                param=f"roi_pooling_param {{ pooled_h: {ph} pooled_w: {pw} spatial_scale: {scale} }}")
    case(f"ROIPooling-{ph}x{pw}-scale{scale}", make_net(text, (("data", (1, 3, 8, 10)), ("raw", (9, 5)))),
         opts={"in_scale": 40.0, "in_shift": 20.0})
text = roi_table(8, images=2) + layer("pool", "ROIPooling", bottoms=("data", "rois"),
                                      param="roi_pooling_param { pooled_h: 3 pooled_w: 2 spatial_scale: 0.25 }")
case("ROIPooling-2-images", make_net(text, (("data", (2, 4, 9, 7)), ("raw", (8, 5)))),
     opts={"in_scale": 20.0, "in_shift": 10.0})

# PSROIPooling: output_dim x group^2 channels; one image, then two (batch indices 0 and 1)
for od, g, scale in ((2, 3, 0.25), (3, 2, 0.5), (1, 4, 0.125)):
    text = roi_table(7) + layer("ps", "PSROIPooling", bottoms=("data", "rois"),
                                param=f"psroi_pooling_param {{ spatial_scale: {scale} output_dim: {od} "
                                      f"group_size: {g} }}")
    case(f"PSROIPooling-od{od}-g{g}-scale{scale}", make_net(text, (("data", (1, od * g * g, 9, 11)), ("raw", (7, 5)))),
         opts={"in_scale": 12.0, "in_shift": 12.0})
text = roi_table(6, images=2) + layer("ps", "PSROIPooling", bottoms=("data", "rois"),
                                      param="psroi_pooling_param { spatial_scale: 0.5 output_dim: 2 group_size: 2 }")
case("PSROIPooling-2-images", make_net(text, (("data", (2, 8, 6, 7)), ("raw", (6, 5)))),
     opts={"in_scale": 6.0, "in_shift": 6.0})


def proposal_net(param_str, hw=(4, 5), image=(64, 80, 1.0), anchors=9, tops=("rois",), head=""):
    """im_info from three constants; scores and deltas standard normal."""
    text = layer("im_split", "Slice", bottoms=("im_raw",), tops=("im0", "im1", "im2"),
                 param="slice_param { axis: 1 slice_point: 1 slice_point: 2 }")
    text += constant("im_h", "im0", image[0]) + constant("im_w", "im1", image[1]) + constant("im_s", "im2", image[2])
    text += layer("im_info", "Concat", bottoms=("im_h", "im_w", "im_s"), param="concat_param { axis: 1 }")
    text += layer("proposal", "Python", bottoms=("scores", "deltas", "im_info"), tops=tops,
                  param=f"python_param {{ module: 'rpn.proposal_layer' layer: 'ProposalLayer' "
                        f"param_str: \"{param_str}\" }}")
    h, w = hw
    ins = [("scores", (1, 2 * anchors, h, w)), ("deltas", (1, 4 * anchors, h, w)), ("im_raw", (1, 3))]
    if head:
        ins.append(("feat", (1, 3, h, w)))
    return make_net(text + head, ins)


case("Proposal-stride16", proposal_net("'feat_stride': 16"))
case("Proposal-scores-top", proposal_net("'feat_stride': 16", tops=("rois", "roi_scores")))
# scale 2.5: boxes under 40 px are filtered out
case("Proposal-min-size", proposal_net("'feat_stride': 16", image=(64, 80, 2.5)))
case("Proposal-scales", proposal_net("'feat_stride': 8\\n'scales': [2, 4]", hw=(6, 5), image=(48, 40, 1.0),
                                     anchors=6))
# 20 x 18 x 9 = 3240 anchors: more proposals than the post-NMS 300 survive
case("Proposal-post-nms-cut", proposal_net("'feat_stride': 16", hw=(20, 18), image=(320, 288, 0.5)))
case("Proposal-then-ROIPooling",
     proposal_net("'feat_stride': 16", head=layer("pool", "ROIPooling", bottoms=("feat", "rois"),
                                                  param="roi_pooling_param { pooled_h: 2 pooled_w: 2 "
                                                        "spatial_scale: 0.0625 }")))
