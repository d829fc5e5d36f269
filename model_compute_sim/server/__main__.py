"""`python -m model_compute_sim.server`: serve over stdio."""

from model_compute_sim.server.app import main

if __name__ == "__main__":
    raise SystemExit(main())
