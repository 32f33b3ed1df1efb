# SPDX-License-Identifier: MIT
"""The man page and each subcommand's --help document the same options, so they cannot drift
apart: every long option --help lists is described exactly once in the man page section of
its subcommand, and the section describes none that --help lacks."""

import os
import re
import subprocess
import unittest

SECHO = os.environ.get("SECHO_BIN", "../../build/secho")
SOURCE = os.environ.get("SECHO_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
MANPAGE = os.path.join(SOURCE, "secho.1")

SUBCOMMANDS = ("server", "client", "bench", "keygen")
REQUIRED_SECTIONS = ("FILES", "ENVIRONMENT", "SIGNALS", "EXIT STATUS", "EXAMPLES")

# An option line of --help: two or more spaces, an optional "-x, ", then "--name".
HELP_OPTION = re.compile(r"^ {2,}(?:-[A-Za-z], )?--([a-z][a-z0-9-]*)")
# A long option in roff, where '-' is written '\-'.
ROFF_OPTION = re.compile(r"\\-\\-([a-z][a-z0-9\\-]*)")


def help_options(cmd):
    """The long options --help lists, in order (a list, so a duplicate shows)."""
    out = subprocess.run([SECHO, cmd, "--help"], capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise AssertionError(f"secho {cmd} --help exited {out.returncode}: {out.stderr}")
    return [m.group(1) for line in out.stdout.splitlines() if (m := HELP_OPTION.match(line))]


def man_sections():
    """{section title: [lines]} of the man page."""
    sections, title = {}, None
    with open(MANPAGE, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith(".SH "):
                title = line[4:].strip().strip('"')
                sections[title] = []
            elif title is not None:
                sections[title].append(line)
    return sections


def man_options(lines):
    """The long options a section describes: those on the tag line after each .TP (only
    there, so that prose mentioning another option does not count as documenting it)."""
    found, tag_next = [], False
    for line in lines:
        if line.startswith(".TP"):
            tag_next = True
            continue
        if tag_next:
            found += [m.replace("\\-", "-") for m in ROFF_OPTION.findall(line)]
            tag_next = False
    return found


class ManPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sections = man_sections()

    def test_required_sections(self):
        for title in REQUIRED_SECTIONS:
            with self.subTest(section=title):
                self.assertTrue(title in self.sections, f"no .SH {title}")
                self.assertTrue(any(l.strip() for l in self.sections[title]), "section is empty")

    def test_every_subcommand_option_documented_once(self):
        for cmd in SUBCOMMANDS:
            with self.subTest(cmd=cmd):
                title = f"{cmd.upper()} OPTIONS"
                self.assertTrue(title in self.sections, f"no .SH {title}")
                in_help = help_options(cmd)
                in_man = man_options(self.sections[title])
                self.assertGreater(len(in_help), 1, "no options parsed from --help")
                self.assertEqual(len(in_help), len(set(in_help)), f"--help lists twice: {in_help}")
                dups = sorted({o for o in in_man if in_man.count(o) > 1})
                self.assertEqual(dups, [], f"man page section {title} describes twice")
                self.assertEqual(sorted(set(in_help) - set(in_man)), [],
                                 f"in `secho {cmd} --help` but not in the man page's {title}")
                self.assertEqual(sorted(set(in_man) - set(in_help)), [],
                                 f"in the man page's {title} but not in `secho {cmd} --help`")

    def test_synopsis_names_every_subcommand(self):
        synopsis = "\n".join(self.sections.get("SYNOPSIS", []))
        for cmd in SUBCOMMANDS:
            with self.subTest(cmd=cmd):
                self.assertIn(f".B secho {cmd}", synopsis)
        self.assertIn("\\-\\-version", synopsis)

    def test_help_has_examples(self):
        # The help texts teach: each shows at least one runnable command line.
        for cmd in SUBCOMMANDS:
            with self.subTest(cmd=cmd):
                out = subprocess.run([SECHO, cmd, "--help"], capture_output=True, text=True,
                                     timeout=10).stdout
                self.assertIn("Examples:", out)
                self.assertIn(f"  secho {cmd}", out)


if __name__ == "__main__":
    unittest.main()
