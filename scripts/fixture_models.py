"""Small PyTorch models whose ONNX exports are ghn's test fixtures.

Together they cover the patterns PyTorch 1.13's exporter produces on real networks (see
/work/shared/notes/onnx-exports.md): folded / preserved / training BatchNorm, shared initializers,
decomposed LayerNorm and GELU, Clip-ReLU6, hard-swish, squeeze-excite, MatMul+Add linears,
attention chains, class tokens, position embeddings, Concat, grouped and dilated convs, Gather
on a parameter table, InstanceNorm/GroupNorm, PReLU.

Importable: `from fixture_models import build_model, MODEL_NAMES` (scripts/ on sys.path) so
other scripts can load predicted weights back into the same modules by parameter name.
Input is 1x28x28 (Fashion-MNIST), 10 classes.
"""
from __future__ import annotations

import math
from typing import Callable, Dict

import torch
from torch import Tensor, nn
import torch.nn.functional as F

IN_CHANNELS = 1
NUM_CLASSES = 10
INPUT_SHAPE = (1, IN_CHANNELS, 28, 28)


# --------------------------------------------------------------------------- cnn_small
class CnnSmall(nn.Module):
    """The "small CNN" of the training benchmark: conv32-relu-pool-conv64-relu-mean-linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(IN_CHANNELS, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        return self.fc(x.mean((2, 3)))


# --------------------------------------------------------------------------- resnet_small
class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        # Projection shortcut (1x1 conv + BN) whenever the shape changes, as in torchvision.
        self.downsample = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class ResNetSmall(nn.Module):
    """ResNet with stages 16/32/64 (2, 1, 1 basic blocks), BN, projection shortcuts, GAP, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(IN_CHANNELS, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 16, 1))
        self.layer2 = nn.Sequential(BasicBlock(16, 32, 2))
        self.layer3 = nn.Sequential(BasicBlock(32, 64, 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ResNetFlat(ResNetSmall):
    """resnet_small with a flattened 64×7×7 head instead of global average pooling: the ResNet-style
    model of the fine-tuning acceptance (PyTorch, 300 AdamW steps at lr 1e-3, batch 64: 86–87%
    Fashion-MNIST test accuracy over two seeds; the pooled head gets 79–82%)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64 * 7 * 7, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(x, 1))


# --------------------------------------------------------------------------- vit_small / vit_handmade
class MlpBlock(nn.Sequential):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim), nn.Dropout(0.0))


class TorchAttentionBlock(nn.Module):
    """Pre-LN encoder block with nn.MultiheadAttention, as in torchvision's ViT."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MlpBlock(dim, mlp_hidden)

    def forward(self, x: Tensor) -> Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class HandmadeAttention(nn.Module):
    """q/k/v Linear + MatMul/Softmax/MatMul with explicit Reshape/Transpose (timm style)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def split_heads(self, t: Tensor) -> Tensor:
        b, n, c = t.shape
        return t.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.split_heads(self.q(x)), self.split_heads(self.k(x)), self.split_heads(self.v(x))
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class HandmadeAttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = HandmadeAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MlpBlock(dim, mlp_hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VitSmall(nn.Module):
    """ViT: patch 7 conv (28x28 -> 4x4 = 16 tokens), class token, learned position embedding."""

    def __init__(self, block: Callable[[int, int, int], nn.Module], depth: int, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        patch = 7
        tokens = (28 // patch) ** 2 + 1
        self.conv_proj = nn.Conv2d(IN_CHANNELS, dim, patch, patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.empty(1, tokens, dim).normal_(std=0.02))
        self.layers = nn.Sequential(*[block(dim, heads, 2 * dim) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_proj(x)  # [B, C, 4, 4]
        x = x.flatten(2).transpose(1, 2)  # [B, 16, C]
        cls = self.class_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embedding
        x = self.ln(self.layers(x))
        return self.head(x[:, 0])


# --------------------------------------------------------------------------- mobilenet_small
class SqueezeExcite(nn.Module):
    """SE with an arbitrary (odd) squeeze width and a choice of gate (hardsigmoid or sigmoid)."""

    def __init__(self, channels: int, squeeze: int, gate: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = act
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = gate

    def forward(self, x: Tensor) -> Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


def conv_bn_act(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: nn.Module | None = None) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, expand: int, c_out: int, k: int, stride: int, act: Callable[[], nn.Module], se: SqueezeExcite | None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expand != c_in:
            layers.append(conv_bn_act(c_in, expand, 1, act=act()))
        layers.append(conv_bn_act(expand, expand, k, stride, groups=expand, act=act()))  # depthwise
        if se is not None:
            layers.append(se)
        layers.append(conv_bn_act(expand, c_out, 1))  # linear bottleneck
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        return x + y if self.use_residual else y


class MobileNetSmall(nn.Module):
    """MobileNetV2/V3/EfficientNet mix: ReLU6 (Clip), Hardswish, SiLU, SE with hardsigmoid and sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn_act(IN_CHANNELS, 16, 3, 2, act=nn.Hardswish())
        self.blocks = nn.Sequential(
            InvertedResidual(16, 16, 16, 3, 1, nn.ReLU6, None),  # MobileNetV2 style, no expansion
            InvertedResidual(16, 48, 24, 3, 2, nn.ReLU6, None),
            InvertedResidual(24, 72, 24, 5, 1, nn.Hardswish, SqueezeExcite(72, 18, nn.Hardsigmoid(), nn.ReLU())),
            # EfficientNet style: SiLU everywhere, sigmoid gate, odd squeeze width (like b0's 10/20).
            InvertedResidual(24, 96, 40, 3, 2, nn.SiLU, SqueezeExcite(96, 5, nn.Sigmoid(), nn.SiLU())),
        )
        self.head_conv = conv_bn_act(40, 96, 1, act=nn.Hardswish())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(96, 128), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(128, NUM_CLASSES))

    def forward(self, x: Tensor) -> Tensor:
        x = self.head_conv(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


# --------------------------------------------------------------------------- convnext_small
class LayerNorm2dPermute(nn.LayerNorm):
    """torchvision's LayerNorm2d: permute to channels-last, layer_norm over C, permute back."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class LayerNormChannelsFirst(nn.Module):
    """The original ConvNeXt repo's channels_first LayerNorm: explicit moments over dim 1,
    weight[:, None, None] indexing (constant folding turns it into a new [C,1,1] initializer)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    """dw7x7 -> permute -> LN -> Linear(4C) -> GELU -> Linear(C) -> layer scale -> permute -> residual.
    layer_scale_shape [C] applies the scale channels-last (torchvision), [C,1,1] after permuting back."""

    def __init__(self, dim: int, scale_channels_first: bool) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        shape = (dim, 1, 1) if scale_channels_first else (dim,)
        # Non-trivial values so the Mul cannot be mistaken for an identity.
        self.layer_scale = nn.Parameter(torch.full(shape, 0.1))
        self.scale_channels_first = scale_channels_first

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        if self.scale_channels_first:
            y = self.layer_scale * y.permute(0, 3, 1, 2)
        else:
            y = (self.layer_scale * y).permute(0, 3, 1, 2)
        return x + y


class ConvNeXtSmall(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(IN_CHANNELS, 32, 4, 4), LayerNorm2dPermute(32, eps=1e-6))  # 28 -> 7
        self.stage1 = ConvNeXtBlock(32, scale_channels_first=False)
        self.downsample = nn.Sequential(LayerNormChannelsFirst(32), nn.Conv2d(32, 64, 2, 2))  # 7 -> 3
        self.stage2 = ConvNeXtBlock(64, scale_channels_first=True)
        self.norm = nn.LayerNorm(64, eps=1e-6)
        self.head = nn.Linear(64, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stage2(self.downsample(self.stage1(self.stem(x))))
        return self.head(self.norm(x.mean((-2, -1))))


# --------------------------------------------------------------------------- densenet_small
class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1-BN-ReLU-Conv3x3; the first BN follows a Concat, so eval export keeps it."""

    def __init__(self, c_in: int, growth: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = torch.cat(features, 1)
        x = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(x)))


class DenseBlock(nn.Module):
    def __init__(self, layers: int, c_in: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([DenseLayer(c_in + i * growth, growth) for i in range(layers)])

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.AvgPool2d(2, 2))


class DenseNetSmall(nn.Module):
    def __init__(self, growth: int = 8) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(IN_CHANNELS, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.block1 = DenseBlock(3, 16, growth)  # 16 + 24 = 40
        self.transition1 = Transition(40, 20)
        self.block2 = DenseBlock(3, 20, growth)  # 20 + 24 = 44
        self.norm5 = nn.BatchNorm2d(44)
        self.classifier = nn.Linear(44, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.block2(self.transition1(self.block1(self.stem(x))))
        x = F.adaptive_avg_pool2d(F.relu(self.norm5(x)), 1)
        return self.classifier(torch.flatten(x, 1))


# --------------------------------------------------------------------------- inception_small
class BasicConv2d(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int, **kwargs: int) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, k, bias=False, **kwargs), nn.BatchNorm2d(c_out, eps=1e-3), nn.ReLU())


class InceptionModule(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(c_in, 16, 1)
        self.branch3 = nn.Sequential(BasicConv2d(c_in, 16, 1), BasicConv2d(16, 24, 3, padding=1))
        self.branch5 = nn.Sequential(BasicConv2d(c_in, 8, 1), BasicConv2d(8, 8, 5, padding=2))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), BasicConv2d(c_in, 8, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], 1)  # 56


class InceptionSmall(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(BasicConv2d(IN_CHANNELS, 32, 3, padding=1), nn.MaxPool2d(2))
        self.inception = InceptionModule(32)
        self.grouped = BasicConv2d(56, 64, 3, padding=1, groups=4)
        self.dilated = BasicConv2d(64, 64, 3, padding=2, dilation=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(64, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dilated(self.grouped(self.inception(self.stem(x))))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


# --------------------------------------------------------------------------- mlp
class Mlp(nn.Sequential):
    def __init__(self) -> None:
        super().__init__(
            nn.Flatten(),
            nn.Linear(28 * 28 * IN_CHANNELS, 64),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(64, 32),
            nn.GELU(approximate="tanh"),
            nn.Dropout(0.1),
            nn.Linear(32, NUM_CLASSES),
        )


# --------------------------------------------------------------------------- misc_small
class MiscSmall(nn.Module):
    """Odds and ends: GroupNorm, InstanceNorm, PReLU, ReduceMean pooling, an Embedding looked up
    with a data-dependent index (Gather on a parameter table), BatchNorm1d, a bias-free Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(IN_CHANNELS, 16, 3, padding=1)
        self.gn = nn.GroupNorm(4, 16)
        self.prelu = nn.PReLU(16)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.inorm = nn.InstanceNorm2d(32, affine=True)
        self.bucket_embedding = nn.Embedding(2, 32)
        self.bn1d = nn.BatchNorm1d(32)
        self.fc = nn.Linear(32, NUM_CLASSES, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        # Bucket = is the image brighter than 0 on average; keeps the Gather data-dependent so
        # constant folding cannot remove it.
        bucket = (x.mean((1, 2, 3)) > 0).long()
        x = self.prelu(self.gn(self.conv1(x)))
        x = F.relu(self.inorm(self.conv2(x)))
        features = x.mean((2, 3)) + self.bucket_embedding(bucket)
        return self.fc(F.relu(self.bn1d(features)))


# --------------------------------------------------------------------------- registry
MODEL_BUILDERS: Dict[str, Callable[[], nn.Module]] = {
    "cnn_small": CnnSmall,
    "resnet_small": ResNetSmall,
    "resnet_flat": ResNetFlat,
    "vit_small": lambda: VitSmall(TorchAttentionBlock, depth=4),
    "vit_handmade": lambda: VitSmall(HandmadeAttentionBlock, depth=2),
    "mobilenet_small": MobileNetSmall,
    "convnext_small": ConvNeXtSmall,
    "densenet_small": DenseNetSmall,
    "inception_small": InceptionSmall,
    "mlp": Mlp,
    "misc_small": MiscSmall,
}
MODEL_NAMES = list(MODEL_BUILDERS)

# Fresh norm layers (scale 1, shift 0, mean 0, var 1) are what the exporter deduplicates; resnet_small
# keeps them fresh to show that. Elsewhere they get non-trivial values so folding / executing BN is
# actually exercised numerically.
RANDOMIZED_NORMS = {"mobilenet_small", "densenet_small", "inception_small", "misc_small", "convnext_small"}


def randomize_norms(model: nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm, LayerNormChannelsFirst)):
                if getattr(m, "weight", None) is not None:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    m.running_mean.uniform_(-0.3, 0.3)
                    m.running_var.uniform_(0.5, 2.0)


def build_model(name: str, seed: int = 0) -> nn.Module:
    """Deterministic construction: the same name and seed always give the same weights."""
    if name not in MODEL_BUILDERS:
        raise KeyError(f"unknown fixture model {name!r}; known: {', '.join(MODEL_NAMES)}")
    torch.manual_seed(seed)
    model = MODEL_BUILDERS[name]()
    if name in RANDOMIZED_NORMS:
        randomize_norms(model)
    model.eval()
    return model


if __name__ == "__main__":
    for n in MODEL_NAMES:
        m = build_model(n)
        out = m(torch.randn(2, *INPUT_SHAPE[1:]))
        print(f"{n:16s} params={sum(p.numel() for p in m.parameters()):8d} out={tuple(out.shape)}")
