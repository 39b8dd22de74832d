"""Weight-tensor inventories (name, shape, role) of the seed models, from their configurations alone
(no TensorFlow), for storage accounting. The NRX inventory reproduces the reference ``get_weights()``
order; its element count is checked against claim M1's exact parameter counts in the tests."""
from __future__ import annotations


def _sepconv(prefix: str, cin: int, cout: int, k: int = 3) -> list[tuple]:
    return [(f"{prefix}/depthwise", (k, k, cin, 1), "depthwise"),
            (f"{prefix}/pointwise", (1, 1, cin, cout), "kernel"),
            (f"{prefix}/bias", (cout,), "bias")]


def _dense(prefix: str, cin: int, cout: int) -> list[tuple]:
    return [(f"{prefix}/kernel", (cin, cout), "kernel"), (f"{prefix}/bias", (cout,), "bias")]


def nrx_inventory(num_iterations: int, d_s: int = 56, num_bits: int = 4, hidden: int = 128,
                  agg_hidden: int = 64, num_inputs: int = 18, num_pe: int = 2) -> list[tuple]:
    """``(name, shape, role)`` of every NRX weight in reference order (RT: 2 iterations, Large: 8)."""
    inv = (_sepconv("state_init/c0", num_inputs, hidden) + _sepconv("state_init/c1", hidden, hidden)
           + _sepconv("state_init/c2", hidden, d_s))
    for i in range(num_iterations):
        p = f"cgnn{i}"
        inv += _dense(f"{p}/agg0", d_s, agg_hidden) + _dense(f"{p}/agg1", agg_hidden, d_s)
        inv += (_sepconv(f"{p}/upd0", 2 * d_s + num_pe, hidden) + _sepconv(f"{p}/upd1", hidden, hidden)
                + _sepconv(f"{p}/upd2", hidden, d_s))
    inv += _dense("readout_llr/0", d_s, hidden) + _dense("readout_llr/1", hidden, num_bits)
    inv += _dense("readout_ch/0", d_s, hidden) + _dense("readout_ch/1", hidden, 8)
    return inv
