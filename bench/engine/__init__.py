"""The simulation: server round loop, worker (one model, many virtual clients), backends."""
