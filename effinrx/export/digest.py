"""A digest of what an ONNX model computes, independent of its node order and internal names.

tf2onnx names nodes and tensors after TensorFlow's per-process unique names (``cgnn/...`` in one
process, ``cgnn_1/...`` in the next), and ModelOpt orders independent nodes by those names, so two
exports of the same weights differ byte for byte and a file hash cannot identify a model across
processes (sweep resume caches, Ray workers that rebuild the same receiver).
:func:`content_digest` hashes every tensor by what computes it (Merkle style): a graph input by its
name and type, an initializer by its type, shape and bytes, a node output by the node's domain, op
type, attributes and the hashes of its inputs. The model's digest combines the opsets and the graph
outputs' names and hashes; nodes that feed no output do not count.
"""
from __future__ import annotations

import hashlib
from pathlib import Path


def content_digest(path: str | Path, length: int = 20) -> str:
    """Hex SHA-1 (first ``length`` digits) of the computation of the ONNX model at ``path``."""
    import onnx

    m = onnx.load(str(path))
    g = m.graph
    val: dict[str, str] = {"": "none"}  # an omitted optional input
    for i in g.input:
        val[i.name] = _h("in", i.name, i.type.SerializeToString())
    for t in g.initializer:
        if t.name not in val:  # a graph input of the same name wins, as in ONNX
            c = onnx.TensorProto()
            c.CopyFrom(t)
            c.name = ""
            val[t.name] = _h("init", c.SerializeToString())
    for n in g.node:  # ONNX stores nodes in a topological order
        node = _h("node", n.domain, n.op_type, [val[x] for x in n.input],
                  [_attribute(a) for a in sorted(n.attribute, key=lambda a: a.name)])
        for k, o in enumerate(n.output):
            if o:
                val[o] = _h("out", node, k)
    return _h("model", sorted((o.domain, o.version) for o in m.opset_import),
              [(o.name, val[o.name]) for o in g.output])[:length]


def _h(*parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def _attribute(a) -> bytes:
    """An attribute's bytes without the name of a tensor it holds (a Constant's value)."""
    import onnx

    b = onnx.AttributeProto()
    b.CopyFrom(a)
    if b.HasField("t"):
        b.t.name = ""
    return b.SerializeToString()
