"""Reference graphs for test/space.test.ts: what PyTorch 1.13's exporter writes for a few
torchvision models and a timm-style ViT, normalized so the generated space can be compared
node by node. Run with /usr/bin/python3 (torch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 scripts/space_reference.py fixtures/space/reference-graphs.json

Normalization: exporter-numbered names `onnx::Op_N` become `onnx::Op_#`; Constant nodes are
dropped and inputs produced by them become "C" (the exporter pools small constants across
scopes); Identity nodes are dropped, but every parameter slot (initializer or Identity output)
is listed with its dims, so merging differences caused by torchvision's custom init do not matter.
"""
import io, json, re, sys
import torch, torch.nn as nn, torchvision, onnx

def norm(s):
    return re.sub(r'onnx::(\w+?)_\d+', r'onnx::\1_#', s)

def summarize(model):
    g = model.graph
    consts = {o for n in g.node if n.op_type == 'Constant' for o in n.output}
    dims = {t.name: list(t.dims) for t in g.initializer}
    slots = sorted([norm(n), d] for n, d in dims.items())
    nodes = []
    for n in g.node:
        if n.op_type == 'Identity':
            slots.append([norm(n.output[0]), dims[n.input[0]]])
            continue
        if n.op_type == 'Constant':
            continue
        attrs = {}
        for a in n.attribute:
            v = onnx.helper.get_attribute_value(a)
            if isinstance(v, onnx.TensorProto): v = [list(v.dims), v.data_type]
            elif isinstance(v, bytes): v = v.decode()
            elif isinstance(v, float): v = round(v, 6)
            attrs[a.name] = v
        nodes.append([n.op_type, n.name, ['C' if i in consts else norm(i) for i in n.input], [norm(o) for o in n.output], attrs])
    return {'slots': sorted(slots), 'nodes': nodes}

class Attn(nn.Module):
    def __init__(s, d, h, n):
        super().__init__(); s.h, s.n, s.d = h, n, d
        s.qkv = nn.Linear(d, 3 * d); s.proj = nn.Linear(d, d); s.scale = (d // h) ** -0.5
    def forward(s, x):
        qkv = s.qkv(x).reshape(-1, s.n, 3, s.h, s.d // s.h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = ((q @ k.transpose(-2, -1)) * s.scale).softmax(dim=-1)
        return s.proj((a @ v).transpose(1, 2).reshape(-1, s.n, s.d))

class Mlp(nn.Module):
    def __init__(s, d, r):
        super().__init__(); s.fc1 = nn.Linear(d, d * r); s.act = nn.GELU(); s.fc2 = nn.Linear(d * r, d)
    def forward(s, x): return s.fc2(s.act(s.fc1(x)))

class Block(nn.Module):
    def __init__(s, d, h, n, r):
        super().__init__()
        s.norm1 = nn.LayerNorm(d, eps=1e-6); s.attn = Attn(d, h, n); s.norm2 = nn.LayerNorm(d, eps=1e-6); s.mlp = Mlp(d, r)
    def forward(s, x):
        x = x + s.attn(s.norm1(x))
        return x + s.mlp(s.norm2(x))

class PatchEmbed(nn.Module):
    def __init__(s, d, p, n):
        super().__init__(); s.proj = nn.Conv2d(1, d, p, p); s.d, s.n = d, n
    def forward(s, x): return s.proj(x).reshape(-1, s.d, s.n).transpose(1, 2)

class ViT(nn.Module):
    """timm layout with token counts as Python ints (what src/space/families/vit.ts mirrors)."""
    def __init__(s, d=24, p=7, h=2, depth=2, r=3, token=True):
        super().__init__(); n = (28 // p) ** 2; s.token = token
        if token: s.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        s.pos_embed = nn.Parameter(torch.zeros(1, n + (1 if token else 0), d))
        s.patch_embed = PatchEmbed(d, p, n)
        s.blocks = nn.Sequential(*[Block(d, h, n + (1 if token else 0), r) for _ in range(depth)])
        s.norm = nn.LayerNorm(d, eps=1e-6); s.head = nn.Linear(d, 10)
    def forward(s, x):
        x = s.patch_embed(x)
        if s.token: x = torch.cat([s.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = s.norm(s.blocks(x + s.pos_embed))
        return s.head(x[:, 0] if s.token else x.mean(dim=1))

CASES = [
    ('resnet18', lambda: torchvision.models.resnet18(num_classes=10), (1, 3, 64, 64), 13, 'PRESERVE'),
    ('resnet18', lambda: torchvision.models.resnet18(num_classes=10), (1, 3, 64, 64), 13, 'EVAL'),
    ('mobilenet_v2', lambda: torchvision.models.mobilenet_v2(num_classes=10), (1, 3, 64, 64), 13, 'EVAL'),
    ('mobilenet_v3_small', lambda: torchvision.models.mobilenet_v3_small(num_classes=10), (1, 3, 64, 64), 13, 'PRESERVE'),
    ('vit_token', lambda: ViT(), (1, 1, 28, 28), 13, 'PRESERVE'),
    ('vit_token', lambda: ViT(), (1, 1, 28, 28), 17, 'PRESERVE'),
    ('vit_mean', lambda: ViT(token=False), (1, 1, 28, 28), 13, 'PRESERVE'),
]

def main(out):
    result = {'torch': torch.__version__, 'cases': {}}
    for name, ctor, shape, opset, mode in CASES:
        torch.manual_seed(0)
        m = ctor().eval()
        buf = io.BytesIO()
        kw = {'training': torch.onnx.TrainingMode.PRESERVE} if mode == 'PRESERVE' else {}
        torch.onnx.export(m, torch.randn(*shape), buf, input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, opset_version=opset, **kw)
        result['cases'][f'{name}.{mode.lower()}{opset}'] = summarize(onnx.load_from_string(buf.getvalue()))
    with open(out, 'w') as f:
        json.dump(result, f, separators=(',', ':'))

if __name__ == '__main__':
    main(sys.argv[1])
