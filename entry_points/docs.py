"""Generated documentation: docs/spec_reference.md's table and docs/cli.md, from the schema and the CLIs.

python -m tao_siamese_oi.entry_points.docs     # rewrite both; a test fails when they are stale
"""

from pathlib import Path

import click

from tao_siamese_oi.config.reference import BEGIN, END, spec_reference_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"  # the repository's docs/ (a source checkout)
CLI_HEADER = "# Command-line help\n\nGenerated from the commands (`python -m tao_siamese_oi.entry_points.docs`).\n"


def cli_markdown() -> str:
    from tao_launcher.cli import USAGE
    from tao_siamese_oi.entry_points.optical_inspection import cli

    sections = [CLI_HEADER, "## tao\n", "```text", USAGE.rstrip(), "```\n"]
    width = 100  # the page must not depend on the terminal it is generated in
    with click.Context(cli, info_name="optical_inspection", terminal_width=width, max_content_width=width) as context:
        sections += ["## optical_inspection\n", "```text", cli.get_help(context), "```\n"]
        for name, command in cli.commands.items():
            with click.Context(
                command, parent=context, info_name=name, terminal_width=width, max_content_width=width
            ) as sub:
                sections += [f"### optical_inspection {name}\n", "```text", command.get_help(sub), "```\n"]
    return "\n".join(sections)


def spec_reference_page(current: str) -> str:
    """``current`` with its generated table replaced."""
    start, end = current.index(BEGIN), current.index(END) + len(END)
    return current[:start] + spec_reference_markdown() + current[end:]


def main() -> None:
    (DOCS / "cli.md").write_text(cli_markdown())
    page = DOCS / "spec_reference.md"
    page.write_text(spec_reference_page(page.read_text()))


if __name__ == "__main__":
    main()
