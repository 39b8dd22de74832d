"""Link-level simulation: scenario config, PUSCH set-up, channels, Monte-Carlo engine, metrics."""
