"""Claim M1 (seed 000): NRX-RT / NRX-Large parameter counts, per block, plus MACs per slot.

Counts are read from the built Keras models (``count_params`` and the per-layer variables); MACs per
slot are computed from the layer weight shapes and cross-checked against the closed form from the
config (3x3 depthwise + pointwise per RE for separable convs, in x out per RE for dense layers).
"""
import functools

import pytest

from effinrx.receivers.nrx_layers import _own_vars, build_cgnn, get_config

PAPER = "RT 142,922; Large 437,366; StateInit 28,634, CGNN iteration 49,074, ReadoutLLRs 7,812, ReadoutChEst 8,328"
EXPECTED = {"nrx-rt": 142922, "nrx-large": 437366}


@functools.lru_cache(maxsize=None)
def _net(name):
    return build_cgnn(get_config(name))


def macs_from_shapes(net, prbs: int, num_tx: int = 2, num_sym: int = 14) -> int:
    """Multiply-accumulates of one slot (both UEs), from the layers' weight shapes."""
    per_re = 0
    for layer in net.core_layers:
        for v in _own_vars(layer):
            if "bias" not in v.name:
                per_re += int(v.shape.num_elements())  # each weight used once per RE
    return per_re * 12 * prbs * num_sym * num_tx


def macs_closed_form(cfg, prbs: int, num_tx: int = 2, num_sym: int = 14) -> int:
    def sep(cin, cout):
        return 9 * cin + cin * cout

    cin = 4 * cfg.num_rx_ant + 2
    per = 0
    for n in list(cfg.num_units_init) + [cfg.d_s]:
        per += sep(cin, n)
        cin = n
    for _ in range(cfg.num_it):
        a = cfg.d_s
        for n in list(cfg.num_units_agg) + [cfg.d_s]:
            per += a * n
            a = n
        c = 2 * cfg.d_s + 2
        for n in list(cfg.num_units_state) + [cfg.d_s]:
            per += sep(c, n)
            c = n
    for out in (cfg.num_bits_per_symbol, 2 * cfg.num_rx_ant):
        a = cfg.d_s
        for n in list(cfg.num_units_readout) + [out]:
            per += a * n
            a = n
    return per * 12 * prbs * num_sym * num_tx


@pytest.mark.claim("M1")
@pytest.mark.parametrize("name", ["nrx-rt", "nrx-large"])
def test_m1_param_counts(name, claim_check):
    net = _net(name)
    blocks = net.block_param_counts()
    total = int(net.count_params())
    per_it = sorted({v for k, v in blocks.items() if k.startswith("cgnn_it")})
    measured = {"total": total, "state_init": blocks["state_init"], "cgnn_iteration": per_it[0],
                "readout_llrs": blocks["readout_llrs"], "readout_chest": blocks["readout_chest"],
                "num_iterations": sum(k.startswith("cgnn_it") for k in blocks),
                "num_arrays": len(net.get_weights())}
    assert len(per_it) == 1  # every iteration has the same size
    ok = (total == EXPECTED[name] and blocks["state_init"] == 28634 and per_it[0] == 49074
          and blocks["readout_llrs"] == 7812 and blocks["readout_chest"] == 8328)
    claim_check(f"{name}/params", measured, kind="exact", reproduced=ok, paper=PAPER,
                note=f"{total:,} trainable parameters in {measured['num_arrays']} arrays")


@pytest.mark.claim("M1")
@pytest.mark.parametrize("name", ["nrx-rt", "nrx-large"])
@pytest.mark.parametrize("prbs", [4, 132])
def test_m1_macs_per_slot(name, prbs, claim_check):
    net = _net(name)
    m = macs_from_shapes(net, prbs)
    assert m == macs_closed_form(net.cfg, prbs)
    claim_check(f"{name}/macs-per-slot/{prbs}prb", {"macs": m}, kind="exact",
                note=f"{m / 1e9:.3f} GMAC per slot (2 UEs, 14 symbols, {12 * prbs} subcarriers); reported, "
                     f"not a paper number")
