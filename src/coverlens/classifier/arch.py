"""Which CNN the classifier fine-tunes, and how fastai should cut and split it.

fastai 2.8 only knows how to cut torchvision models listed in `fastai.vision.learner.model_meta`;
mobilenet_v2 is not among them (it pools functionally, so fastai's guess fails), so we register
it. The arch callables are module-level functions taking `pretrained=`: `learn.export` pickles
them by reference and `load_learner` imports them again. Any other name is handed to timm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from coverlens.errors import CoverlensError, WeightsError

if TYPE_CHECKING:
    from torch import nn

TORCHVISION_ARCHS = ("mobilenet_v2", "resnet18", "resnet34", "resnet50")


def _torchvision_model(name: str, pretrained: bool) -> nn.Module:
    import torchvision

    from coverlens.weights import ensure_mobilenet_v2_weights

    builder = getattr(torchvision.models, name)
    if not pretrained:
        return builder(weights=None)
    weights = "DEFAULT"
    if name == "mobilenet_v2":
        ensure_mobilenet_v2_weights()  # the offline copy, where torchvision's weights API looks
        weights = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1  # the one shipped offline
    try:
        return builder(weights=weights)
    except OSError as exc:  # no network and no cached checkpoint (URLError is an OSError)
        raise WeightsError(
            f"ImageNet weights for {name} are not available offline ({exc}); "
            + ("run `coverlens weights`" if name == "mobilenet_v2" else "use mobilenet_v2 or --no-pretrained")
        ) from exc


def mobilenet_v2(pretrained: bool = False) -> nn.Module:
    return _torchvision_model("mobilenet_v2", pretrained)


def resnet18(pretrained: bool = False) -> nn.Module:
    return _torchvision_model("resnet18", pretrained)


def resnet34(pretrained: bool = False) -> nn.Module:
    return _torchvision_model("resnet34", pretrained)


def resnet50(pretrained: bool = False) -> nn.Module:
    return _torchvision_model("resnet50", pretrained)


def import_fastai() -> None:
    """Import fastai.vision once, hiding the deprecation warnings its import raises on torch 2.14
    and pandas 3 (torch.jit.script, mode.chained_assignment): noise to a person running train."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fastai.vision.all  # noqa: F401


_CUTS = {"mobilenet_v2": -1, "resnet18": -2, "resnet34": -2, "resnet50": -2}


def register_archs() -> None:
    """Tell fastai how to cut and split our torchvision archs (idempotent; called before building)."""
    import_fastai()
    import torchvision
    from fastai.vision.all import imagenet_stats
    from fastai.vision.learner import default_split, model_meta

    for name in TORCHVISION_ARCHS:
        fn = globals()[name]
        if fn in model_meta:
            continue
        # reuse fastai's own splitter for the archs it knows (resnets), minus its `weights` key:
        # our functions take `pretrained=` and load the weights themselves
        known = dict(model_meta.get(getattr(torchvision.models, name), {}))
        known.pop("weights", None)
        model_meta[fn] = {"cut": _CUTS[name], "split": known.get("split", default_split),
                          "stats": known.get("stats", imagenet_stats)}


def resolve_arch(name: str) -> Callable[..., nn.Module] | str:
    """Our torchvision function for a known name, else the name itself when timm knows it."""
    if name in TORCHVISION_ARCHS:
        register_archs()
        return globals()[name]
    try:
        import timm
    except ImportError:
        timm = None
    if timm is not None and timm.list_models(name):
        return name
    raise CoverlensError(
        f"unknown arch {name!r}: use one of {', '.join(TORCHVISION_ARCHS)} or a timm model name"
    )


def arch_stats(arch: Callable[..., Any] | str) -> tuple[list[float], list[float]]:
    """The normalisation stats the arch was pretrained with (ImageNet unless fastai knows better)."""
    import_fastai()
    from fastai.vision.all import imagenet_stats
    from fastai.vision.learner import model_meta

    if isinstance(arch, str):
        import timm

        config = timm.get_pretrained_cfg(arch)
        if config is not None:
            return list(config.mean), list(config.std)
        return imagenet_stats
    return model_meta.get(arch, {}).get("stats", imagenet_stats)


def backbone(arch_name: str, pretrained: bool) -> nn.Module:
    """The arch's convolutional body, cut the way the fine-tuned classifier cuts it."""
    import_fastai()
    from fastai.vision.learner import create_body, model_meta

    arch = resolve_arch(arch_name)
    if isinstance(arch, str):
        from fastai.vision.all import create_timm_model

        model, _ = create_timm_model(arch, 1, pretrained=pretrained)
        return model[0]
    return create_body(arch(pretrained=pretrained), 3, pretrained, model_meta[arch]["cut"])
