"""The first downsampling made twice as strong: the article's second memory method
("pooling": smaller feature maps), applied inside the model rather than to its input.

The first layer that downsamples (a `Conv2d`, `MaxPool2d` or `AvgPool2d` with a stride
above 1, in the order the model defines its modules, which is the order torchvision's
and timm's CNNs run them) gets twice its stride: every feature map after it has half
the height and width, a quarter of the elements. A convolution keeps its kernel (a
7x7 stem at stride 4 still covers every pixel); a pooling window grows with its stride
(2x2/2 becomes 4x4/4), so it still pools every input element once. The parameters do
not change; what the model sees does, so it must be retrained.

A model whose layers after it expect a fixed spatial size (a `Linear` over a flattened
map without an adaptive pool before it) fails its forward with the change; the advice
reports that with the module, as for any change that breaks the forward.
"""

from __future__ import annotations

from torch import nn

from memflops.advisor.advice import ArticleClaim
from memflops.advisor.changes import Applied, NotApplicable, Step, change

DOWNSAMPLERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[-1])


def first_downsampling(model: nn.Module) -> tuple[str, nn.Module] | None:
    """(path, layer) of the first Conv2d/MaxPool2d/AvgPool2d with a stride above 1."""
    for path, module in model.named_modules():
        if isinstance(module, DOWNSAMPLERS) and max(_pair(module.stride)) > 1:
            return path, module
    return None


@change(
    "first-downsample-doubled",
    "the first downsampling twice as strong (feature maps a quarter the size after it)",
    kind="both", preserves_function=False, architecture=True,
    article_claim=ArticleClaim("pooling: smaller feature maps earlier save memory", "peak",
                               None),
)
def first_downsample_doubled(step: Step) -> Applied:
    found = first_downsampling(step.module)
    if found is None:
        raise NotApplicable("no Conv2d, MaxPool2d or AvgPool2d with a stride above 1")
    path, layer = found
    sh, sw = _pair(layer.stride)  # type: ignore[arg-type]
    if isinstance(layer, nn.Conv2d):
        layer.stride = (2 * sh, 2 * sw)
        what = f"stride {sh}x{sw} -> {2 * sh}x{2 * sw}, kernel kept"
    else:
        assert isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d))
        kh, kw = _pair(layer.kernel_size)
        layer.kernel_size = (2 * kh, 2 * kw)
        layer.stride = (2 * sh, 2 * sw)
        what = f"window {kh}x{kw}/{sh} -> {2 * kh}x{2 * kw}/{2 * sh}"
    return Applied(step, (path,), f"{path} ({type(layer).__name__}): {what}")
