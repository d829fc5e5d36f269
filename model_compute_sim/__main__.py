from model_compute_sim.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
