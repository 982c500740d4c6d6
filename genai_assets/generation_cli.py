"""Placeholder until the generation CLI lands (owned by the fine-tuning work)."""


def add_generate_arguments(parser):
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt", required=True)


def run_generate(args):
    raise SystemExit("generate is not implemented yet")
