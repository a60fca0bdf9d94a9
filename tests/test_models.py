"""The networks of the two papers: structure, parameter names, shapes, noise-site counts."""
import numpy as np
import pytest

import tinyproj as tp
from tinyproj import backend, models, nn
from tinyproj.algorithm1 import weight_params
from tinyproj.data import DATASET_SHAPES     # the shapes of the datasets the CLI offers
from tinyproj.errors import UserError


def _x(*shape, seed=0):
    return tp.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _layer_types(model):
    return [(name, type(m).__name__) for name, m in model.named_children()]


# --- bc_cifar10 -----------------------------------------------------------------------------
def test_bc_cifar10_forward_shape_and_names():
    model = models.bc_cifar10(width=0.25, rng=backend.make_rng(0))
    out = model(_x(2, 3, 32, 32))
    assert out.shape == (2, 10)
    names = [n for n, _ in model.named_parameters()]
    expected = []
    for k, kind in enumerate(["conv"] * 6 + ["fc"] * 3, start=1):
        expected += [f"{kind}{k}.weight", f"bn{k}.weight", f"bn{k}.bias"]
    assert names == expected
    assert list(weight_params(model)) == [n for n in expected if not n.startswith("bn")]


def test_bc_cifar10_layer_order_is_binaryconnect():
    model = models.bc_cifar10(width=0.0625)
    kinds = [t for _, t in _layer_types(model)]
    block = ["Conv2d", "BatchNorm2d", "ReLU"]
    pooled = ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]       # conv → pool → BN → ReLU
    fc = ["Linear", "BatchNorm1d", "ReLU"]
    assert kinds == (block + pooled) * 3 + ["Flatten"] + fc + fc + ["Linear", "BatchNorm1d"]
    # BN after the output layer, no ReLU after it
    assert _layer_types(model)[-1] == ("bn9", "BatchNorm1d")
    assert model.bn9.num_features == 10
    # 3×3 convs, padding 1, stride 1, no biases anywhere
    for name, m in model.named_children():
        if isinstance(m, nn.Conv2d):
            assert m.kernel_size == (3, 3) and m.padding == (1, 1) and m.stride == (1, 1)
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert m.bias is None, name


def test_bc_cifar10_full_width_weight_count():
    model = models.bc_cifar10(width=1.0, rng=backend.make_rng(0))
    total = sum(int(p.size) for p in weight_params(model).values())
    expected = (3 * 128 * 9 + 128 * 128 * 9 + 128 * 256 * 9 + 256 * 256 * 9 + 256 * 512 * 9
                + 512 * 512 * 9 + 8192 * 1024 + 1024 * 1024 + 1024 * 10)
    assert total == expected
    shapes = {n: tuple(p.shape) for n, p in weight_params(model).items()}
    assert shapes["conv1.weight"] == (128, 3, 3, 3)
    assert shapes["conv6.weight"] == (512, 512, 3, 3)
    assert shapes["fc7.weight"] == (1024, 8192)
    assert shapes["fc9.weight"] == (10, 1024)
    # every BN: 2 parameters per channel/unit
    bn = sum(int(p.size) for n, p in model.named_parameters() if n.startswith("bn"))
    assert bn == 2 * (2 * 128 + 2 * 256 + 2 * 512 + 1024 + 1024 + 10)


def test_width_scales_and_stays_positive():
    m = models.bc_cifar10(width=0.001)
    assert m.conv1.out_channels == 1 and m.fc7.out_features == 1
    with pytest.raises(ValueError, match="width"):
        models.bc_cifar10(width=0)


def test_same_rng_same_weights():
    a = models.bc_cifar10(width=0.125, rng=backend.make_rng(3))
    b = models.bc_cifar10(width=0.125, rng=backend.make_rng(3))
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and np.array_equal(pa.data, pb.data)


# --- alexnet_bn ------------------------------------------------------------------------------
def test_alexnet_bn_small_build_and_forward():
    model = models.alexnet_bn(num_classes=10, input_size=67, width=0.125, rng=backend.make_rng(0))
    out = model(_x(2, 3, 67, 67))
    assert out.shape == (2, 10)
    shapes = {n: tuple(p.shape) for n, p in weight_params(model).items()}
    assert list(shapes) == [f"conv{k}.weight" for k in range(1, 6)] + \
        [f"fc{k}.weight" for k in (6, 7, 8)]
    assert shapes["conv1.weight"] == (12, 3, 11, 11)
    assert shapes["fc6.weight"] == (512, 32 * 1 * 1)
    assert all(getattr(m, "bias", None) is None for m in model.children()
               if isinstance(m, (nn.Conv2d, nn.Linear)))
    pools = [m for m in model.children() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3 and all(p.kernel_size == (3, 3) and p.stride == (2, 2) for p in pools)
    assert not any(isinstance(m, nn.Dropout) for m in model.children())


def test_alexnet_bn_full_size_flatten_and_options():
    # flattened sizes are computed from the input size (checked on the layer, no forward)
    assert models.alexnet_bn(input_size=227, width=0.0625).fc6.in_features == 16 * 6 * 6
    assert models.alexnet_bn(input_size=224, width=0.0625).fc6.in_features == 16 * 5 * 5
    m = models.alexnet_bn(10, input_size=67, width=0.0625, dropout=0.5, output_bn=True)
    assert sum(isinstance(c, nn.Dropout) for c in m.children()) == 2
    assert _layer_types(m)[-1] == ("bn8", "BatchNorm1d")
    with pytest.raises(ValueError, match="too small"):
        models.alexnet_bn(input_size=64)


# --- Walking Noise models ---------------------------------------------------------------------
@pytest.mark.parametrize("bn", [False, True])
def test_mlp_tfc_and_lenet5_forward(bn):
    x = _x(2, 1, 28, 28)
    for build in (models.mlp_tfc, models.lenet5):
        model = build(bn=bn, rng=backend.make_rng(0))
        assert model(x).shape == (2, 10)
        layers = [m for m in model.children() if isinstance(m, (nn.Conv2d, nn.Linear))]
        # biases exactly when there is no batch norm
        assert all((m.bias is not None) == (not bn) for m in layers)
    assert models.lenet5().conv1.padding == (0, 0)         # the authors' LeNet-5 pads nothing
    assert models.lenet5().fc3.in_features == 16 * 4 * 4   # 28 → 24 → 12 → 8 → 4
    assert models.lenet5(conv1_padding=2).fc3.in_features == 400   # the classic LeNet
    assert models.lenet5(in_channels=3, input_size=32).conv1.padding == (0, 0)
    assert models.mlp_tfc().fc4.in_features == 64


def noise_sites(model):
    """Walking Noise's sites: the input, then every conv/linear, BN, ReLU and pooling (the
    last layer's output is the logits); flatten and dropout are not sites."""
    site_types = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d)
    return ["input"] + [name for name, m in model.named_children() if isinstance(m, site_types)]


def test_walking_noise_site_counts():
    assert len(noise_sites(models.mlp_tfc(bn=False))) == 8
    assert len(noise_sites(models.mlp_tfc(bn=True))) == 11
    assert len(noise_sites(models.lenet5(bn=False))) == 12
    assert len(noise_sites(models.lenet5(bn=True))) == 16
    # the last site is the logits layer
    assert noise_sites(models.lenet5())[-1] == "fc5"
    assert noise_sites(models.mlp_tfc(bn=True))[-1] == "fc4"


# --- registry ---------------------------------------------------------------------------------
def test_registry_and_build():
    assert set(models.MODELS) == {"bc_cifar10", "alexnet_bn", "mlp_tfc", "lenet5"}
    m = models.build("lenet5", bn=True)
    assert isinstance(m, models.LeNet5)
    assert isinstance(models.build("MLP-TFC"), models.MLPTFC)
    with pytest.raises(ValueError) as err:
        models.build("resnet50")
    for name in models.MODELS:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="takes no argument 'depth'"):
        models.build("bc_cifar10", depth=3)


# --- the factory: every model for every dataset shape ----------------------------------------
REFUSED = {("alexnet_bn", "cifar10"), ("alexnet_bn", "mnist"), ("alexnet_bn", "fashion-mnist"),
           ("alexnet_bn", "svhn"), ("alexnet_bn", "synthetic")}


@pytest.mark.parametrize("dataset", sorted(DATASET_SHAPES))
@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_factory_builds_every_model_for_every_dataset(name, dataset):
    shape, num_classes = DATASET_SHAPES[dataset]
    width = 0.1 if dataset == "imagenet" else 0.25    # small, fast; the shapes are what count
    if (name, dataset) in REFUSED:
        with pytest.raises(UserError, match="--dataset") as err:
            models.check(name, shape, num_classes, width=width)
        assert "shrink to nothing" in str(err.value) and "at least 67×67" in str(err.value)
        with pytest.raises(UserError):
            models.build(name, shape, num_classes, width=width)
        return
    bn = name in models.BN_SWITCH      # exercise the switch where there is one
    model = models.build(name, shape, num_classes, width=width, bn=bn, rng=backend.make_rng(0))
    out = model(_x(2, *shape))
    assert out.shape == (2, num_classes)


def test_lenet5_on_32x32_images_runs_forward():
    # the old training.build_model dropped input_size: fc3 expected 400 inputs and got 576
    model = models.build("lenet5", (3, 32, 32), 10, rng=backend.make_rng(0))
    assert model.conv1.in_channels == 3 and model.conv1.padding == (0, 0)
    assert model.fc3.in_features == 400
    assert model(_x(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("bn", [False, True])
def test_lenet5_trains_on_32x32_images(bn):
    """Training steps on synthetic 3×32×32 data (CIFAR-10/SVHN's shape) move every weight and
    lower the loss on the batch it keeps seeing."""
    from tinyproj import functional as F
    from tinyproj import optim
    from tinyproj.algorithm1 import train_step
    x, y = tp.data.synthetic_classification(16, (3, 32, 32), 10, seed=0)
    model = models.build("lenet5", (3, 32, 32), 10, bn=bn, bias=True, init="torch",
                         rng=backend.make_rng(0))
    assert model.fc3.in_features == 400
    before = {k: v.data.copy() for k, v in model.named_parameters()}
    opt = optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = [train_step(model, x, y, F.cross_entropy, opt, "none", {}, backend.make_rng(1))
              for _ in range(5)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    moved = {k for k, v in model.named_parameters() if not np.array_equal(v.data, before[k])}
    # every weight and the output bias (a bias before batch norm has zero gradient in exact
    # arithmetic: BN subtracts it again)
    assert {k for k in before if before[k].ndim >= 2} | {"fc5.bias"} <= moved


def test_lenet5_shapes_match_its_docstring():
    """MNIST: 28 → 24 → 12 → 8 → 4 (fc3: 256); 32×32: 28 → 14 → 10 → 5 (fc3: 400)."""
    assert models.lenet5_sizes(28) == [28, 24, 12, 8, 4]
    assert models.lenet5_sizes(32) == [32, 28, 14, 10, 5]
    assert models.lenet5_sizes(28, conv1_padding=2) == [28, 28, 14, 10, 5]
    m = models.build("lenet5", (1, 28, 28), 10)
    seen = {}
    out = _x(2, 1, 28, 28)
    for name, layer in m.named_children():
        out = layer(out)
        seen[name] = tuple(out.shape)
    assert seen["relu1"] == (2, 6, 24, 24) and seen["pool1"] == (2, 6, 12, 12)
    assert seen["relu2"] == (2, 16, 8, 8) and seen["pool2"] == (2, 16, 4, 4)
    assert seen["flatten"] == (2, 256) and seen["fc5"] == (2, 10)
    with pytest.raises(UserError, match="conv1_padding"):
        models.lenet5(conv1_padding=-1)


def test_factory_derives_channels_and_size_from_the_shape():
    m = models.build("bc_cifar10", (1, 28, 28), 10, width=0.0625)
    assert m.conv1.in_channels == 1 and m.fc7.in_features == 32 * 3 * 3   # 28 → 14 → 7 → 3
    assert models.build("mlp_tfc", (3, 32, 32), 7).fc1.in_features == 3072
    assert models.build("mlp_tfc", (20,), 3).fc4.out_features == 3
    assert models.build("alexnet_bn", (3, 227, 227), 5, width=0.0625).fc6.in_features == 16 * 36
    assert models.build("bc_cifar10", (3, 8, 8), 10, width=0.0625).fc7.in_features == 32  # 8 → 1


@pytest.mark.parametrize("name,paper", [("bc_cifar10", 128), ("alexnet_bn", 96),
                                        ("mlp_tfc", 64), ("lenet5", 6)])
def test_factory_honours_width(name, paper):
    for width in (0.25, 0.5):
        model = models.build(name, width=width)
        first = getattr(model, model.weight_layer_names()[0])
        assert first.weight.shape[0] == round(paper * width)


def test_mlp_tfc_width_scales_hidden_units_and_lenet5_channels():
    m = models.build("mlp_tfc", width=0.5)
    assert [m.fc1.out_features, m.fc2.out_features, m.fc3.out_features] == [32, 32, 32]
    assert models.build("mlp_tfc", width=0.001).fc1.out_features == 1        # never 0
    assert models.build("mlp_tfc", width=2).fc3.out_features == 128
    le = models.build("lenet5", width=0.5)
    assert (le.conv1.out_channels, le.conv2.out_channels, le.fc3.out_features,
            le.fc4.out_features) == (3, 8, 60, 42)
    assert le(_x(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("width", [0, -1, float("nan"), float("inf"), "wide", None, True])
def test_factory_refuses_bad_widths(width):
    with pytest.raises(UserError, match="--width") as err:
        models.check("mlp_tfc", (1, 28, 28), width=width)
    assert err.value.flag == "--width"


@pytest.mark.parametrize("name", ["bc_cifar10", "alexnet_bn"])
def test_factory_refuses_bn_switch_where_bn_is_always_on(name):
    with pytest.raises(UserError, match="--bn") as err:
        models.check(name, None, bn=True)
    assert "always has batch norm" in str(err.value) and err.value.flag == "--bn"
    models.check(name, None, bn=False)            # the default is fine


@pytest.mark.parametrize("name,shape,words", [
    ("alexnet_bn", (1, 28, 28), "shrink to nothing"),
    ("bc_cifar10", (1, 7, 7), "at least 8×8"),
    ("bc_cifar10", (784,), "needs images"),
    ("lenet5", (3, 32, 30), "square"),
    ("lenet5", (0, 28, 28), "positive integer"),
    ("mlp_tfc", (2.5, 3), "positive integer"),
])
def test_factory_refuses_shapes_a_model_cannot_take(name, shape, words):
    with pytest.raises(UserError, match=words) as err:
        models.check(name, shape, 10)
    assert err.value.flag == "--dataset"


def test_factory_refuses_unknown_names_and_arguments():
    with pytest.raises(UserError, match="--model") as err:
        models.check("resnet50", (3, 32, 32))
    assert err.value.flag == "--model"
    with pytest.raises(UserError, match="come from the input shape"):
        models.build("bc_cifar10", input_size=16)
    with pytest.raises(UserError, match="num_classes"):
        models.check("lenet5", (1, 28, 28), 0)
    key, kwargs = models.check("alexnet_bn", (3, 224, 224), 1000, dropout=0.5)
    assert key == "alexnet_bn" and kwargs["dropout"] == 0.5 and kwargs["input_size"] == 224


def test_check_allocates_no_weights(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("check() built a layer")
    monkeypatch.setattr(nn.Conv2d, "__init__", refuse)
    monkeypatch.setattr(nn.Linear, "__init__", refuse)
    for name in models.MODELS:
        models.check(name, models.DEFAULT_INPUT_SHAPES[name], 10, width=3.0)
