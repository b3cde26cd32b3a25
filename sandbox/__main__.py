"""`python -m sandbox [--host H] [--port P] [--data PATH]`: the agencies without hedui's CLI."""

import argparse

from sandbox.server import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument(
        "--data", dest="data_path", default=None, help="SQLite file for seeded people"
    )
    parser.add_argument(
        "--no-synthetic",
        dest="synthetic",
        action="store_false",
        help="people nobody seeded have no records (default: synthetic records)",
    )
    args = parser.parse_args()
    run(host=args.host, port=args.port, data_path=args.data_path, synthetic=args.synthetic)


if __name__ == "__main__":
    main()
