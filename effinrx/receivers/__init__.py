"""Receivers behind one interface (:class:`effinrx.receivers.base.Receiver`): classical baselines,
the CGNN neural receiver (NRX), the DeepRx-style ResNet, and compressed variants of them."""
