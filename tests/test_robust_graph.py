"""Structural checks of the graph: cycles told apart from bottoms produced only later, by a
linear pass (its time is measured by benchmarks/convert.py --graph-checks, not asserted here)."""
import pytest

from caffe2mx.converter.errors import ModelError, ModelErrors
from caffe2mx.converter.graph import _components, build_graph
from caffe2mx.converter.prototxt import parse_prototxt_text

HEAD = 'name: "g"\ninput: "data"\ninput_shape { dim: 1 dim: 3 }\n'


def relu(name, bottom, top):
    return f'layer {{ name: "{name}" type: "ReLU" bottom: "{bottom}" top: "{top}" }}\n'


def build(text):
    return build_graph(parse_prototxt_text(HEAD + text, "g.prototxt"))


def messages(text):
    with pytest.raises((ModelError, ModelErrors)) as info:
        build(text)
    exc = info.value
    return [str(e) for e in exc.errors] if isinstance(exc, ModelErrors) else [str(exc)]


def test_a_bottom_produced_later_is_not_a_cycle():
    msgs = messages(relu("a", "b", "a") + relu("b", "data", "b"))
    assert len(msgs) == 1 and "produced only later, by layer 'b'" in msgs[0]


def test_cycles_of_any_length():
    for n in (2, 3, 50):
        layers = "".join(relu(f"l{i}", f"t{(i - 1) % n}", f"t{i}") for i in range(n))
        msgs = messages(layers)
        assert msgs and all("the net has a cycle" in m for m in msgs), msgs


def test_a_cycle_beside_a_late_producer():
    text = (relu("a", "x", "y") + relu("b", "y", "x")  # a <-> b
            + relu("c", "z", "w") + relu("d", "data", "z"))  # z comes later, no cycle
    msgs = messages(text)
    assert any("layer 'a'" in m and "cycle" in m for m in msgs)
    assert any("layer 'c'" in m and "produced only later" in m for m in msgs)


def test_components_match_a_brute_force_search():
    """Tarjan's components against reachability computed the slow way (same edges: the writer
    of the blob version each bottom reads), on tangled nets with in-place layers."""
    import random
    rng = random.Random(3)
    names = [f"b{i}" for i in range(12)]

    class L:
        def __init__(self, bottom, top):
            self.bottom, self.top = bottom, top

    for _ in range(30):
        layers = [(L(rng.sample(names, rng.randint(0, 2)), rng.sample(names, rng.randint(1, 2))), None)
                  for _ in range(10)]
        comp = _components(layers)
        succ = {i: set() for i in range(len(layers))}  # writer of the version each bottom reads -> reader
        for j, (m, _) in enumerate(layers):
            for b in m.bottom:
                before = [i for i in range(j) if b in layers[i][0].top]
                after = [i for i in range(j, len(layers)) if b in layers[i][0].top]
                if before or after:
                    succ[before[-1] if before else after[0]].add(j)

        def reach(i):
            seen, stack = set(), [i]
            while stack:
                for j in succ[stack.pop()]:
                    if j not in seen:
                        seen.add(j)
                        stack.append(j)
            return seen
        r = {i: reach(i) for i in succ}
        for i in succ:
            for j in succ:
                same = i == j or (j in r[i] and i in r[j])
                assert (comp[i] == comp[j]) == same, (i, j)


def test_a_long_chain_builds():
    """10,000 layers, each reading the previous: no recursion limit, no quadratic pass."""
    text = "".join(relu(f"l{i}", "data" if i == 0 else f"t{i - 1}", f"t{i}") for i in range(10000))
    assert len(build(text).nodes) == 10000
    msgs = messages(relu("first", "t9999", "x") + text)  # read at the top, produced at the very end
    assert len(msgs) == 1 and "produced only later" in msgs[0]
