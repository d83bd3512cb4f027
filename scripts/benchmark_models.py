"""Fashion-MNIST architectures of ghn's real-export accuracy benchmark (issue 18).

Ordinary `torch.nn` modules written the way people write them for a 1x28x28, 10-class task:
torchvision-style ResNets, VGG, LeNet-5, MobileNetV2/V3, EfficientNet, ConvNeXt, ViT, MLP-Mixer,
DenseNet, Inception, SqueezeNet, ResNeXt, ShuffleNetV2, MLPs and a few plain CNNs. They are
independent of the GHN's training space (src/space) and of the test fixtures (fixture_models.py),
and must never be used for meta-training: they exist only here and in the git-ignored
fixtures/benchmark/ that make_benchmark.py writes.

Every model keeps PyTorch's default initialization (nothing is re-initialized): the exported file
is the default-init baseline the benchmark fine-tunes against. `build_model(name)` seeds torch from
the name, so a model's weights are the same on every run.

    /usr/bin/python3 scripts/benchmark_models.py     # parameter counts and CPU step times
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

import torch
from torch import Tensor, nn
import torch.nn.functional as F

NUM_CLASSES = 10
INPUT_SHAPE = (1, 1, 28, 28)


# ----------------------------------------------------------------------------- LeNet-5
class LeNet5(nn.Module):
    """LeCun et al. 1998 as usually re-implemented: tanh and average pooling, 5x5 kernels."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5), nn.Tanh(), nn.AvgPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, NUM_CLASSES),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


# ----------------------------------------------------------------------------- VGG
def make_vgg_layers(cfg: Sequence[int | str], batch_norm: bool) -> nn.Sequential:
    """torchvision's vgg `make_layers`: numbers are 3x3 conv widths, "M" a 2x2 max pool."""
    layers: List[nn.Module] = []
    in_channels = 1
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        conv = nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1)
        layers += [conv, nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)] if batch_norm else [conv, nn.ReLU(inplace=True)]
        in_channels = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, cfg: Sequence[int | str], batch_norm: bool, hidden: int) -> None:
        super().__init__()
        self.features = make_vgg_layers(cfg, batch_norm)
        last = [v for v in cfg if v != "M"][-1]
        side = 28 // 2 ** sum(1 for v in cfg if v == "M")
        self.classifier = nn.Sequential(
            nn.Linear(int(last) * side * side, hidden), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(hidden, NUM_CLASSES),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


# ----------------------------------------------------------------------------- ResNets (torchvision style)
def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=dilation, groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (stride on the 3x3); `groups` and `base_width` make it ResNeXt's."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet with a configurable stem and stage widths.

    stem "imagenet": the 7x7/2 conv + 3x3/2 max pool of the ImageNet models; "cifar": the 3x3/1 conv
    of the CIFAR-style ResNets Fashion-MNIST tutorials use; "pooled": that conv plus a 3x3/2 max pool.
    """

    def __init__(self, block: type, layers: Sequence[int], widths: Sequence[int], stem: str = "cifar",
                 groups: int = 1, width_per_group: int = 64) -> None:
        super().__init__()
        self.inplanes = widths[0]
        self.groups = groups
        self.base_width = width_per_group
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(1, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = nn.Conv2d(1, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
        self.maxpool: nn.Module = nn.Identity() if stem == "cifar" else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.stages = nn.Sequential(*[
            self._make_layer(block, w, n, stride=1 if i == 0 else 2) for i, (w, n) in enumerate(zip(widths, layers))
        ])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, NUM_CLASSES)

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, groups=self.groups, base_width=self.base_width) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.stages(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ----------------------------------------------------------------------------- pre-activation ResNet
class PreActBlock(nn.Module):
    """He et al. 2016, "Identity Mappings": BN-ReLU-conv twice, the shortcut taken after the first BN-ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False) if stride != 1 or in_planes != planes else None

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    def __init__(self, widths: Sequence[int] = (16, 32, 64), blocks: Sequence[int] = (1, 2, 1)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, widths[0], 3, 1, 1, bias=False)
        layers: List[nn.Module] = []
        in_planes = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(PreActBlock(in_planes, w, 2 if i > 0 and j == 0 else 1))
                in_planes = w
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(in_planes)
        self.linear = nn.Linear(in_planes, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn(self.layers(self.conv1(x))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


# ----------------------------------------------------------------------------- MobileNetV2
class ConvBNReLU6(nn.Sequential):
    def __init__(self, in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_planes), nn.ReLU6(inplace=True),
        )


class InvertedResidualV2(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: List[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden_dim, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    # t (expansion), c (channels), n (repeats), s (first stride): torchvision's table, scaled to 28x28.
    SETTING = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 2, 2], [6, 64, 2, 2], [6, 96, 1, 1]]

    def __init__(self, last_channel: int = 320) -> None:
        super().__init__()
        input_channel = 16
        features: List[nn.Module] = [ConvBNReLU6(1, input_channel, stride=2)]  # 28 -> 14
        for t, c, n, s in self.SETTING:
            for i in range(n):
                features.append(InvertedResidualV2(input_channel, c, s if i == 0 else 1, t))
                input_channel = c
        features.append(ConvBNReLU6(input_channel, last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last_channel, NUM_CLASSES))

    def forward(self, x: Tensor) -> Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ----------------------------------------------------------------------------- MobileNetV3
def make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: avg pool, 1x1 conv, activation, 1x1 conv, gate."""

    def __init__(self, input_channels: int, squeeze_channels: int, activation: Callable[[], nn.Module] = nn.ReLU,
                 scale_activation: Callable[[], nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


def conv_norm_act(inp: int, oup: int, k: int, stride: int = 1, groups: int = 1, act: Callable[[], nn.Module] | None = None) -> nn.Sequential:
    layers: List[nn.Module] = [nn.Conv2d(inp, oup, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(oup, eps=0.001, momentum=0.01)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class InvertedResidualV3(nn.Module):
    def __init__(self, inp: int, kernel: int, expanded: int, out: int, use_se: bool, hardswish: bool, stride: int) -> None:
        super().__init__()
        act = nn.Hardswish if hardswish else nn.ReLU
        layers: List[nn.Module] = []
        if expanded != inp:
            layers.append(conv_norm_act(inp, expanded, 1, act=act))
        layers.append(conv_norm_act(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if use_se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4), scale_activation=nn.Hardsigmoid))
        layers.append(conv_norm_act(expanded, out, 1))
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and inp == out

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        return result + x if self.use_res_connect else result


class MobileNetV3Small(nn.Module):
    # input, kernel, expanded, out, SE, hardswish, stride: the head of mobilenet_v3_small's table.
    SETTING = [
        (16, 3, 16, 16, True, False, 2),
        (16, 3, 72, 24, False, False, 2),
        (24, 3, 88, 24, False, False, 1),
        (24, 5, 96, 40, True, True, 1),
        (40, 5, 240, 40, True, True, 1),
        (40, 5, 120, 48, True, True, 1),
    ]

    def __init__(self, last_channel: int = 256) -> None:
        super().__init__()
        layers: List[nn.Module] = [conv_norm_act(1, 16, 3, stride=1, act=nn.Hardswish)]
        layers += [InvertedResidualV3(*cfg) for cfg in self.SETTING]
        lastconv = 6 * self.SETTING[-1][3]
        layers.append(conv_norm_act(self.SETTING[-1][3], lastconv, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(lastconv, last_channel), nn.Hardswish(inplace=True), nn.Dropout(0.2, inplace=True),
            nn.Linear(last_channel, NUM_CLASSES),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


# ----------------------------------------------------------------------------- EfficientNet
class MBConv(nn.Module):
    """EfficientNet's MBConv: 1x1 expand (SiLU), depthwise (SiLU), SE (SiLU, sigmoid), 1x1 project."""

    def __init__(self, inp: int, out: int, kernel: int, stride: int, expand_ratio: int, se_ratio: float = 0.25) -> None:
        super().__init__()
        expanded = inp * expand_ratio
        layers: List[nn.Module] = []
        if expanded != inp:
            layers.append(conv_norm_act(inp, expanded, 1, act=nn.SiLU))
        layers.append(conv_norm_act(expanded, expanded, kernel, stride, groups=expanded, act=nn.SiLU))
        layers.append(SqueezeExcitation(expanded, max(1, int(inp * se_ratio)), activation=nn.SiLU))
        layers.append(conv_norm_act(expanded, out, 1))
        self.block = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and inp == out

    def forward(self, x: Tensor) -> Tensor:
        result = self.block(x)
        return result + x if self.use_res_connect else result


class EfficientNetTiny(nn.Module):
    # expand, kernel, stride, in, out, repeats (efficientnet_b0's first stages, narrowed).
    SETTING = [(1, 3, 1, 24, 16, 1), (6, 3, 1, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 64, 1)]

    def __init__(self) -> None:
        super().__init__()
        layers: List[nn.Module] = [conv_norm_act(1, 24, 3, stride=2, act=nn.SiLU)]  # 28 -> 14
        for expand, k, s, inp, out, n in self.SETTING:
            for i in range(n):
                layers.append(MBConv(inp if i == 0 else out, out, k, s if i == 0 else 1, expand))
        layers.append(conv_norm_act(64, 256, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=0.2, inplace=True), nn.Linear(256, NUM_CLASSES))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ----------------------------------------------------------------------------- ConvNeXt
class LayerNorm2d(nn.LayerNorm):
    """torchvision's channels-first LayerNorm: permute, normalize over C, permute back."""

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    def __init__(self, dim: int, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # N, H, W, C
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtTiny(nn.Module):
    def __init__(self, dims: Sequence[int] = (32, 64, 128), depths: Sequence[int] = (2, 2, 1)) -> None:
        super().__init__()
        stages: List[nn.Module] = [nn.Sequential(nn.Conv2d(1, dims[0], kernel_size=2, stride=2), LayerNorm2d(dims[0], eps=1e-6))]
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            if i > 0:
                stages.append(nn.Sequential(LayerNorm2d(dims[i - 1], eps=1e-6), nn.Conv2d(dims[i - 1], dim, kernel_size=2, stride=2)))
            stages.append(nn.Sequential(*[CNBlock(dim) for _ in range(depth)]))
        self.features = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x).mean([-2, -1])
        return self.head(self.norm(x))


# ----------------------------------------------------------------------------- Vision Transformers
class PatchEmbedViT(nn.Module):
    """ViT with nn.TransformerEncoder: conv patch embedding, class token, learned position embedding."""

    def __init__(self, patch: int = 4, dim: int = 64, depth: int = 4, heads: int = 4, mlp_dim: int = 128) -> None:
        super().__init__()
        num_patches = (28 // patch) ** 2
        self.patch_embed = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, num_patches + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, mlp_dim, dropout=0.1, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.encoder(x))
        return self.head(x[:, 0])


class QkvAttention(nn.Module):
    """timm-style attention: one qkv Linear, split into heads by reshape/permute/unbind."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class DeiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = QkvAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DeiTTiny(nn.Module):
    """A DeiT-style ViT with hand-written attention, patch 7 (16 tokens), mean-pooled tokens."""

    def __init__(self, patch: int = 7, dim: int = 96, depth: int = 3, heads: int = 3) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.randn(1, (28 // patch) ** 2, dim) * 0.02)
        self.blocks = nn.Sequential(*[DeiTBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=1))


# ----------------------------------------------------------------------------- MLP-Mixer
class MixerBlock(nn.Module):
    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mlp = nn.Sequential(nn.Linear(tokens, token_hidden), nn.GELU(), nn.Linear(token_hidden, tokens))
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = nn.Sequential(nn.Linear(dim, channel_hidden), nn.GELU(), nn.Linear(channel_hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class MlpMixer(nn.Module):
    def __init__(self, patch: int = 4, dim: int = 64, depth: int = 4) -> None:
        super().__init__()
        tokens = (28 // patch) ** 2
        self.stem = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
        self.blocks = nn.Sequential(*[MixerBlock(tokens, dim, 64, 4 * dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.blocks(x)).mean(dim=1))


# ----------------------------------------------------------------------------- MLPs
class DeepMLP(nn.Module):
    """Six hidden layers of 256 with ReLU: the deep plain MLP."""

    def __init__(self, hidden: int = 256, depth: int = 6) -> None:
        super().__init__()
        layers: List[nn.Module] = [nn.Flatten()]
        width = 28 * 28
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, NUM_CLASSES))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class WideMLP(nn.Module):
    """The Linear-heavy MLP: 784-1024-512-10 with dropout, most of its 1.3M parameters in one matrix."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 1024)
        self.fc2 = nn.Linear(1024, 512)
        self.fc3 = nn.Linear(512, NUM_CLASSES)
        self.dropout = nn.Dropout(0.2)

    def forward(self, x: Tensor) -> Tensor:
        x = x.view(x.size(0), -1)
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.fc3(x)


class BatchNormMLP(nn.Module):
    """Linear-BatchNorm1d-ReLU, as in many tabular/MNIST examples."""

    def __init__(self, widths: Sequence[int] = (512, 256, 128)) -> None:
        super().__init__()
        layers: List[nn.Module] = [nn.Flatten()]
        width = 784
        for w in widths:
            layers += [nn.Linear(width, w), nn.BatchNorm1d(w), nn.ReLU(inplace=True)]
            width = w
        layers.append(nn.Linear(width, NUM_CLASSES))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


# ----------------------------------------------------------------------------- DenseNet
class Bottleneck_DenseLayer(nn.Module):
    """DenseNet-BC layer in the common (kuangliu) form: the layer concatenates its output to its input."""

    def __init__(self, in_planes: int, growth_rate: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth_rate, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth_rate)
        self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class DenseTransition(nn.Module):
    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNetBC(nn.Module):
    def __init__(self, growth_rate: int = 12, blocks: Sequence[int] = (4, 4, 4), reduction: float = 0.5) -> None:
        super().__init__()
        planes = 2 * growth_rate
        self.conv1 = nn.Conv2d(1, planes, kernel_size=3, padding=1, bias=False)
        self.pool1 = nn.MaxPool2d(2)  # the dense blocks run at 14, 7 and 3
        layers: List[nn.Module] = []
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(Bottleneck_DenseLayer(planes, growth_rate))
                planes += growth_rate
            if i < len(blocks) - 1:
                out_planes = int(planes * reduction)
                layers.append(DenseTransition(planes, out_planes))
                planes = out_planes
        self.dense = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(planes)
        self.linear = nn.Linear(planes, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn(self.dense(self.pool1(self.conv1(x)))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).view(out.size(0), -1))


# ----------------------------------------------------------------------------- Inception
class BasicConv2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, **kwargs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """GoogLeNet's module as torchvision writes it (the "5x5" branch is a 3x3, as in its code)."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, kernel_size=1), BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, kernel_size=1), BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True), BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class MiniGoogLeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = BasicConv2d(1, 32, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(2)  # 28 -> 14
        self.inception3a = Inception(32, 16, 24, 32, 4, 8, 8)    # 64
        self.inception3b = Inception(64, 32, 32, 48, 8, 24, 16)  # 120
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 14 -> 7
        self.inception4a = Inception(120, 48, 24, 52, 4, 12, 16)  # 128
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)  # 7 -> 4
        self.inception5a = Inception(128, 64, 40, 80, 8, 32, 32)  # 208
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(208, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool3(self.inception3b(self.inception3a(self.maxpool1(self.conv1(x)))))
        x = self.maxpool4(self.inception4a(x))
        x = torch.flatten(self.avgpool(self.inception5a(x)), 1)
        return self.fc(self.dropout(x))


# ----------------------------------------------------------------------------- SqueezeNet
class Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    """SqueezeNet 1.1 (torchvision) at a quarter of the width; the classifier is a 1x1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, stride=1, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),  # 14
            Fire(32, 8, 32, 32), Fire(64, 8, 32, 32),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),  # 7
            Fire(64, 16, 64, 64), Fire(128, 16, 64, 64),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),  # 3
            Fire(128, 24, 96, 96), Fire(192, 24, 96, 96), Fire(192, 32, 128, 128),
        )
        self.classifier = nn.Sequential(nn.Dropout(p=0.5), nn.Conv2d(256, NUM_CLASSES, kernel_size=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


# ----------------------------------------------------------------------------- ShuffleNetV2
def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(b, c, h, w)


class ShuffleUnit(nn.Module):
    """torchvision's ShuffleNetV2 InvertedResidual: split (chunk) or two branches, concat, shuffle."""

    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False), nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, widths: Sequence[int] = (24, 48, 96), repeats: Sequence[int] = (3, 3), last: int = 256) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        stages: List[nn.Module] = []
        inp = widths[0]
        for oup, n in zip(widths[1:], repeats):
            stages.append(nn.Sequential(ShuffleUnit(inp, oup, 2), *[ShuffleUnit(oup, oup, 1) for _ in range(n - 1)]))
            inp = oup
        self.stages = nn.Sequential(*stages)
        self.conv5 = nn.Sequential(nn.Conv2d(inp, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU(inplace=True))
        self.fc = nn.Linear(last, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv5(self.stages(self.conv1(x)))
        return self.fc(x.mean([2, 3]))


# ----------------------------------------------------------------------------- plain CNNs
class DeepPlainCNN(nn.Module):
    """Ten 3x3 convs with ReLU and no normalization (VGG-like depth without BN), two max pools."""

    def __init__(self) -> None:
        super().__init__()
        widths = [16, 16, 32, 32, 48, 48, 64, 64, 64, 64]
        pool_after = {1, 3, 7}
        layers: List[nn.Module] = []
        c = 1
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(inplace=True)]
            if i in pool_after:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(64, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class WideShallowNet(nn.Module):
    """One wide 5x5 conv, a 4x4 max pool and a Linear classifier on the flattened map."""

    def __init__(self, width: int = 128) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, width, kernel_size=5, padding=2)
        self.pool = nn.MaxPool2d(4)
        self.fc = nn.Linear(width * 7 * 7, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.pool(F.relu(self.conv(x))), 1))


class DilatedCNN(nn.Module):
    """Context-aggregation style: 3x3 convs with growing dilation (1, 2, 4, 8) at full resolution, BN."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: List[nn.Module] = [nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        for d in (1, 2, 4, 2, 1):
            layers += [nn.Conv2d(width, width, 3, padding=d, dilation=d, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(F.adaptive_max_pool2d(self.features(x), 1), 1))


class GroupNormCNN(nn.Module):
    """A 7x7 stem and residual 3x3 pairs normalized with GroupNorm (batch-size-independent training)."""

    def __init__(self, width: int = 32, groups: int = 8) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 7, stride=2, padding=3, bias=False), nn.GroupNorm(groups, width), nn.ReLU())  # 14
        self.block1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.GroupNorm(groups, width), nn.ReLU(),
                                    nn.Conv2d(width, width, 3, padding=1, bias=False), nn.GroupNorm(groups, width))
        self.down = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), nn.GroupNorm(groups, 2 * width), nn.ReLU())  # 7
        self.block2 = nn.Sequential(nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False), nn.GroupNorm(groups, 2 * width), nn.ReLU(),
                                    nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False), nn.GroupNorm(groups, 2 * width))
        self.fc = nn.Linear(2 * width, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = F.relu(x + self.block1(x))
        x = self.down(x)
        x = F.relu(x + self.block2(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class DropoutCNN(nn.Module):
    """The classic Keras/PyTorch-tutorial CNN: 5x5 convs, max pool, Dropout2d and Dropout, two Linears."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=5)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5)
        self.conv2_drop = nn.Dropout2d(0.25)
        self.fc1 = nn.Linear(64 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, NUM_CLASSES)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))  # 24 -> 12
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))  # 8 -> 4
        x = self.dropout(F.relu(self.fc1(x.view(-1, 64 * 4 * 4))))
        return self.fc2(x)


class AllConvNet(nn.Module):
    """Springenberg et al.'s all-convolutional net, shrunk: strided convs instead of pooling, a 1x1 conv
    classifier, global average pooling, BN after every conv."""

    def __init__(self, c1: int = 32, c2: int = 64) -> None:
        super().__init__()

        def block(cin: int, cout: int, k: int, s: int = 1) -> List[nn.Module]:
            return [nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.net = nn.Sequential(
            *block(1, c1, 3), *block(c1, c1, 3, 2),        # 14
            *block(c1, c2, 3), *block(c2, c2, 3, 2),       # 7
            *block(c2, c2, 3), *block(c2, c2, 1),
            nn.Conv2d(c2, NUM_CLASSES, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class BenchmarkModel:
    name: str
    family: str
    description: str
    build: Callable[[], nn.Module]


MODELS: List[BenchmarkModel] = [
    BenchmarkModel("lenet5", "cnn", "LeNet-5: 5x5 convs, tanh, average pooling, three Linears", LeNet5),
    BenchmarkModel("vgg_bn", "vgg", "VGG (torchvision make_layers) 24-M-48-M-96-96-M with BN, Linear 256 + dropout head",
                   lambda: VGG([24, "M", 48, "M", 96, 96, "M"], batch_norm=True, hidden=256)),
    BenchmarkModel("vgg_plain", "vgg", "VGG 16-16-M-32-32-M-64-64-M without BN, Linear 128 + dropout head",
                   lambda: VGG([16, 16, "M", 32, 32, "M", 64, 64, "M"], batch_norm=False, hidden=128)),
    BenchmarkModel("resnet_basic", "resnet", "torchvision BasicBlock ResNet, CIFAR stem, stages 12/24/48 x 2 blocks (ResNet-14)",
                   lambda: ResNet(BasicBlock, [2, 2, 2], [12, 24, 48])),
    BenchmarkModel("resnet18_narrow", "resnet", "torchvision resnet18 layout (7x7/2 stem, max pool, 4 stages x 2) at widths 16-128",
                   lambda: ResNet(BasicBlock, [2, 2, 2, 2], [16, 32, 64, 128], stem="imagenet")),
    BenchmarkModel("resnet_bottleneck", "resnet", "torchvision Bottleneck ResNet (expansion 4), pooled stem, planes 16/32/64 x 2",
                   lambda: ResNet(Bottleneck, [2, 2, 2], [16, 32, 64], stem="pooled")),
    BenchmarkModel("resnext", "resnet", "ResNeXt bottlenecks: grouped 3x3 convs, cardinality 8, width 4 per group",
                   lambda: ResNet(Bottleneck, [1, 1, 1], [16, 32, 64], groups=8, width_per_group=4)),
    BenchmarkModel("preact_resnet", "resnet", "pre-activation ResNet (BN-ReLU-conv), widths 16/32/64 x 1/2/1, final BN-ReLU", PreActResNet),
    BenchmarkModel("mobilenet_v2", "mobilenet", "MobileNetV2 inverted residuals, ReLU6, expansion 6, 320-channel head", MobileNetV2),
    BenchmarkModel("mobilenet_v3", "mobilenet", "MobileNetV3-small-like: SE with hardsigmoid, hardswish, 5x5 depthwise", MobileNetV3Small),
    BenchmarkModel("efficientnet", "mobilenet", "EfficientNet-like MBConv with SE, SiLU, 3x3/5x5 depthwise", EfficientNetTiny),
    BenchmarkModel("shufflenet_v2", "mobilenet", "ShuffleNetV2 units: channel split, depthwise, concat, channel shuffle", ShuffleNetV2),
    BenchmarkModel("convnext", "convnext", "ConvNeXt blocks (dw 7x7, LayerNorm, GELU MLP, layer scale 1e-6), dims 32/64/128", ConvNeXtTiny),
    BenchmarkModel("vit_encoder", "vit", "ViT: conv patch 4 (49 tokens), class token, pos embed, 4 nn.TransformerEncoderLayer (pre-LN)", PatchEmbedViT),
    BenchmarkModel("deit_qkv", "vit", "DeiT-like ViT: patch 7, hand-written qkv attention, 3 blocks, mean-pooled tokens", DeiTTiny),
    BenchmarkModel("mlp_mixer", "mixer", "MLP-Mixer: patch 4, token- and channel-mixing MLPs, 4 blocks", MlpMixer),
    BenchmarkModel("mlp_deep", "mlp", "plain MLP, 6 hidden layers of 256, ReLU", DeepMLP),
    BenchmarkModel("mlp_wide", "mlp", "Linear-heavy MLP 784-1024-512-10 with dropout", WideMLP),
    BenchmarkModel("mlp_bn", "mlp", "MLP with BatchNorm1d: 784-512-256-128-10", BatchNormMLP),
    BenchmarkModel("densenet_bc", "densenet", "DenseNet-BC: growth 12, pooled stem, 3 dense blocks x 4, compression 0.5", DenseNetBC),
    BenchmarkModel("googlenet_mini", "inception", "GoogLeNet-style Inception modules (4 branches, Concat), BN", MiniGoogLeNet),
    BenchmarkModel("squeezenet", "squeezenet", "SqueezeNet 1.1 Fire modules, conv classifier, no BN", SqueezeNet),
    BenchmarkModel("plain_deep", "bnfree", "deep BN-free plain CNN: ten 3x3 convs with ReLU", DeepPlainCNN),
    BenchmarkModel("wide_shallow", "cnn", "one wide 5x5 conv (128), 4x4 max pool, Linear on the flattened 7x7 map", WideShallowNet),
    BenchmarkModel("dilated_cnn", "cnn", "dilated 3x3 convs (dilation 1/2/4/2/1) with BN, global max pool", DilatedCNN),
    BenchmarkModel("groupnorm_cnn", "cnn", "7x7 stem and residual conv pairs with GroupNorm(8)", GroupNormCNN),
    BenchmarkModel("dropout_cnn", "cnn", "tutorial CNN: 5x5 convs, max pool, Dropout2d/Dropout, two Linears", DropoutCNN),
    BenchmarkModel("allconv", "cnn", "all-convolutional net: strided convs, BN, 1x1 conv classifier, GAP", AllConvNet),
]
MODELS_BY_NAME: Dict[str, BenchmarkModel] = {m.name: m for m in MODELS}
MODEL_NAMES = [m.name for m in MODELS]


def model_seed(name: str) -> int:
    """A seed derived from the name, so adding or reordering models changes no other model's weights."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") & 0x7FFFFFFF


def build_model(name: str) -> nn.Module:
    """The named model with PyTorch's default initialization, seeded from its name, in eval mode."""
    if name not in MODELS_BY_NAME:
        raise KeyError(f"unknown benchmark model {name!r}; known: {', '.join(MODEL_NAMES)}")
    torch.manual_seed(model_seed(name))
    model = MODELS_BY_NAME[name].build()
    return model.eval()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    import time

    torch.set_num_threads(1)
    for spec in MODELS:
        m = build_model(spec.name).train()
        x = torch.randn(64, *INPUT_SHAPE[1:])
        y = torch.randint(0, NUM_CLASSES, (64,))
        F.cross_entropy(m(x), y).backward()  # warm-up
        t0 = time.perf_counter()
        for _ in range(3):
            m.zero_grad()
            F.cross_entropy(m(x), y).backward()
        ms = (time.perf_counter() - t0) / 3 * 1000
        print(f"{spec.name:18s} {spec.family:10s} params={parameter_count(m):9,d} fwd+bwd@64 {ms:6.1f} ms")
